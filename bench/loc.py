#!/usr/bin/env python3
"""Hand-written lines in the wire and API layers at each git revision given:
crates/sesame-wire/src less the generated files, crates/sesame/src/api/, and
crates/sesame-api/src less the generated served.rs. Code lines leave out
blank lines, comments and an inline `#[cfg(test)] mod tests`.

Usage: bench/loc.py REV [REV…]   (e.g. bench/loc.py 9e28875 HEAD)
"""
import sys,re,subprocess
def code_lines(text):
    # drop #[cfg(test)] mod tests { ... } at end, blank and comment lines
    i=text.find("#[cfg(test)]\nmod tests {")
    if i>=0: text=text[:i]
    n=0
    for l in text.split("\n"):
        s=l.strip()
        if not s or s.startswith("//"): continue
        n+=1
    return n
def count(rev, files):
    tot=0; code=0
    for f in files:
        try: t=subprocess.run(["git","show",f"{rev}:{f}"],capture_output=True,text=True,check=True).stdout
        except subprocess.CalledProcessError: continue
        tot+=t.count("\n"); code+=code_lines(t)
    return tot, code
def ls(rev, pat):
    out=subprocess.run(["git","ls-tree","-r","--name-only",rev],capture_output=True,text=True).stdout.split()
    return [f for f in out if re.match(pat,f)]
for rev in sys.argv[1:]:
    wire=[f for f in ls(rev, r"crates/sesame-wire/src/.*\.rs$") if "generated" not in f]
    api=ls(rev, r"crates/sesame/src/api/.*\.rs$")+[f for f in ls(rev, r"crates/sesame-api/src/.*\.rs$") if not f.endswith("served.rs")]
    w=count(rev,wire); a=count(rev,api)
    print(rev, "wire", w, "api", a, "total", (w[0]+a[0], w[1]+a[1]))
