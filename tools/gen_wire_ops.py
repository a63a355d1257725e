#!/usr/bin/env python3
"""Generates the wire layer from AWS's service models (SES v1, SESv2, SNS).

Usage: tools/gen_wire_ops.py [MODELS_DIR] [OUT_DIR]
  MODELS_DIR defaults to models/ (the copy kept in this repository), OUT_DIR
  to crates/sesame-wire/src. Also writes crates/sesame-api/src/served.rs.
  --check compares instead of writing and exits 1 on a difference.

Writes, for every operation of each API:
  generated.rs      the operation enums, v1 output kinds and the v2 route table;
  generated/ses_v1.rs, generated/sesv2.rs, generated/sns.rs:
    - input and output types (required members are not Option; string
      enums are Rust enums spelled as the model spells them);
    - input decoders that check the model's constraints (enum, length,
      pattern, range, required) with AWS's validation wording, from the
      Query form (v1, SNS) or from the REST-JSON path, query and body (v2);
    - output encoders (XML members for Query, JSON for REST-JSON);
    - one trait per API, one method per operation, whose default answers
      NotImplemented naming the operation;
    - the dispatcher: decode, call the trait method, encode.
Nothing here knows what an operation does: that is the hand-written
sesame-api crate, one module per family. Its served.rs, the traits' impls,
is generated too: one method per `pub async fn v1_<op>` (or v2_, sns_)
found in those modules, which it calls.
"""
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Routes older SDKs still send (ses-wire-spec.md §4.3). Their body members
# may come from the query string when the body is empty.
LEGACY_V2_ROUTES = [
    ("ListEmailIdentities", "GET", "/v2/email/identities"),
    ("ListConfigurationSets", "GET", "/v2/email/configuration-sets"),
    ("PutEmailIdentityDkimSigningAttributes", "PUT", "/v1/email/identities/{EmailIdentity}/dkim/signing"),
]
# Members the model marks required that SES leaves out of its answers: an
# identity without a custom MAIL FROM domain has only BehaviorOnMxFailure
# (observed from SES; moto issue #9771). They are Option in the types.
NOT_REQUIRED = {
    ("ses_v1", "IdentityMailFromDomainAttributes"): {"MailFromDomain", "MailFromDomainStatus"},
    ("sesv2", "MailFromAttributes"): {"MailFromDomain", "MailFromDomainStatus"},
    # SES leaves out a notification type's topic when none is set.
    ("ses_v1", "IdentityNotificationAttributes"): {"BounceTopic", "ComplaintTopic", "DeliveryTopic"},
}
RUST_KEYWORDS = {"type", "match", "ref", "mod", "move", "fn", "impl", "loop", "self", "static", "struct",
                 "trait", "use", "where", "while", "as", "break", "const", "continue", "crate", "else",
                 "enum", "extern", "false", "for", "if", "in", "let", "mut", "pub", "return", "super",
                 "true", "unsafe", "async", "await", "dyn", "abstract", "become", "box", "do", "final",
                 "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen"}
RESERVED_TYPES = {"String", "Option", "Result", "Vec", "Box", "Error", "Self", "Value", "Map", "Ok",
                  "Err", "Some", "None", "Default", "Violations", "QueryParams", "XmlOut", "Matched"}


def snake(name):
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    s = re.sub(r"[^A-Za-z0-9]+", "_", s).strip("_").lower()
    if s in RUST_KEYWORDS:
        s = "r#" + s
    if s[0].isdigit():
        s = "n" + s
    return s


def variant(value):
    parts = re.split(r"[^A-Za-z0-9]+", value)
    out = "".join(p[:1].upper() + (p[1:].lower() if p.isupper() or p.isdigit() else p[1:]) for p in parts if p)
    if not out or out[0].isdigit():
        out = "V" + out
    return out


def lower_first(s):
    return s[:1].lower() + s[1:]


def rust_str(s):
    return json.dumps(s)


class Api:
    def __init__(self, model, key, title, trait, protocol):
        self.m = model
        self.shapes = model["shapes"]
        self.key = key
        self.title = title
        self.trait = trait
        self.protocol = protocol  # "query" or "rest-json"
        self.ops = sorted(model["operations"])
        self.decode = set()
        self.encode = set()
        for o in self.ops:
            op = model["operations"][o]
            if "input" in op:
                self.walk(op["input"]["shape"], self.decode)
            if "output" in op:
                self.walk(op["output"]["shape"], self.encode)

    def walk(self, name, into):
        if name in into:
            return
        s = self.shapes[name]
        if s["type"] in ("structure",) or (s["type"] == "string" and "enum" in s):
            into.add(name)
        if s["type"] == "structure":
            for mm in s["members"].values():
                self.walk(mm["shape"], into)
        elif s["type"] == "list":
            self.walk(s["member"]["shape"], into)
        elif s["type"] == "map":
            self.walk(s["key"]["shape"], into)
            self.walk(s["value"]["shape"], into)

    def tname(self, name):
        n = name[:1].upper() + name[1:]
        n = re.sub(r"[^A-Za-z0-9]", "", n)
        return n + "Shape" if n in RESERVED_TYPES else n

    def required(self, name):
        return set(self.shapes[name].get("required", [])) - NOT_REQUIRED.get((self.key, name), set())

    def is_enum(self, name):
        s = self.shapes[name]
        return s["type"] == "string" and "enum" in s

    def rtype(self, name):
        s = self.shapes[name]
        t = s["type"]
        if t == "structure" or self.is_enum(name):
            return self.tname(name)
        if t == "list":
            return f"Vec<{self.rtype(s['member']['shape'])}>"
        if t == "map":
            return f"Vec<({self.rtype(s['key']['shape'])}, {self.rtype(s['value']['shape'])})>"
        return {"string": "String", "integer": "i32", "long": "i64", "double": "f64", "float": "f64",
                "boolean": "bool", "timestamp": "Millis", "blob": "Vec<u8>"}[t]

    def sensitive(self, name, member=None):
        return bool(self.shapes[name].get("sensitive") or (member or {}).get("sensitive"))

    # ------------------------------------------------------------ constraints

    def has_constraints(self, name, seen=None):
        s = self.shapes[name]
        if any(k in s for k in ("min", "max", "pattern")):
            return True
        if s["type"] == "list":
            return self.has_constraints(s["member"]["shape"])
        return False

    def checks(self, name, var, path, sensitive, depth=0):
        """Statements checking `var` (a reference) against the shape's constraints."""
        s = self.shapes[name]
        t = s["type"]
        out = []
        mn, mx = s.get("min"), s.get("max")
        opt = lambda x: f"Some({int(x)})" if x is not None else "None"
        if t == "string" and not self.is_enum(name):
            if mn is not None or mx is not None:
                out.append(f"codec::check_len(v, {var}, &{path}, {opt(mn)}, {opt(mx)}, {str(sensitive).lower()});")
            if "pattern" in s:
                out.append(f"codec::check_pattern(v, {var}, &{path}, {rust_str(s['pattern'])}, {str(sensitive).lower()});")
        elif t in ("integer", "long"):
            if mn is not None or mx is not None:
                out.append(f"codec::check_range(v, *{var} as i64, &{path}, {opt(mn)}, {opt(mx)});")
        elif t == "list":
            if mn is not None or mx is not None:
                out.append(f"codec::check_count(v, {var}.len(), &{path}, {opt(mn)}, {opt(mx)});")
            item = s["member"]["shape"]
            if self.has_constraints(item):
                iv, ip = f"item{depth}", f"ipath{depth}"
                inner = self.checks(item, iv, ip, self.sensitive(item), depth + 1)
                out.append(f"for (n{depth}, {iv}) in {var}.iter().enumerate() {{")
                out.append(f"    let {ip} = codec::Path::Item(&{path}, n{depth} + 1);")
                out += ["    " + x for x in inner]
                out.append("}")
        elif t == "map":
            if mn is not None or mx is not None:
                out.append(f"codec::check_count(v, {var}.len(), &{path}, {opt(mn)}, {opt(mx)});")
        return out

    # ------------------------------------------------------------ types

    def gen_types(self):
        lines = []
        for name in sorted(self.decode | self.encode):
            s = self.shapes[name]
            tn = self.tname(name)
            if self.is_enum(name):
                values = s["enum"]
                variants = []
                used = set()
                for val in values:
                    vn = variant(val)
                    while vn in used:
                        vn += "X"
                    used.add(vn)
                    variants.append((vn, val))
                set_text = "[" + ", ".join(sorted(values)) + "]"
                lines += [f"/// `{name}`: {', '.join(values)}.",
                          "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]",
                          f"pub enum {tn} {{", "    #[default]"]
                lines += [f"    {vn}," for vn, _ in variants]
                lines += ["}", "", f"impl {tn} {{",
                          "    /// The model's spelling.",
                          "    pub fn as_str(self) -> &'static str {", "        match self {"]
                lines += [f"            Self::{vn} => {rust_str(val)}," for vn, val in variants]
                lines += ["        }", "    }", "",
                          "    pub fn parse(s: &str) -> Option<Self> {", "        match s {"]
                lines += [f"            {rust_str(val)} => Some(Self::{vn})," for vn, val in variants]
                lines += ["            _ => None,", "        }", "    }", "",
                          "    /// The constraint an unknown value fails, in AWS's wording.",
                          f"    pub const SET: &'static str = {rust_str('Member must satisfy enum value set: ' + set_text)};",
                          "}", ""]
                continue
            members = s["members"]
            req = self.required(name)
            secret = any(self.sensitive(mm["shape"], mm) for mm in members.values())
            derives = "Clone, Default, PartialEq" + ("" if secret else ", Debug")
            lines += [f"/// `{name}`.", f"#[derive({derives})]", f"pub struct {tn} {{"]
            for mn_, mm in members.items():
                rt = self.rtype(mm["shape"])
                if mn_ not in req:
                    rt = f"Option<{rt}>"
                lines.append(f"    pub {snake(mn_)}: {rt},")
            lines += ["}", ""]
            if secret:
                lines += [f"impl std::fmt::Debug for {tn} {{",
                          "    // Sensitive members never reach logs.",
                          "    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {",
                          f"        f.debug_struct({rust_str(tn)})"]
                for mn_, mm in members.items():
                    if not self.sensitive(mm["shape"], mm):
                        lines.append(f"            .field({rust_str(snake(mn_).replace('r#', ''))}, &self.{snake(mn_)})")
                lines += ["            .finish_non_exhaustive()", "    }", "}", ""]
        return lines

    # ------------------------------------------------------------ Query decode

    def q_decode_expr(self, name, key, path):
        """An expression of type Option<T> (with `?` where parsing can fail)."""
        s = self.shapes[name]
        t = s["type"]
        if self.is_enum(name):
            tn = self.tname(name)
            return f"codec::q_enum(q, &{key}, &{path}, v, {tn}::parse, {tn}::SET)"
        if t == "structure":
            return f"{self.tname(name)}::from_query(q, &{key}, &{path}, v)?"
        if t == "list":
            item = s["member"]["shape"]
            inner = self.q_decode_expr(item, "k", "p")
            return f"codec::q_list(q, &{key}, &{path}, v, |q, k, p, v| Ok({inner}))?"
        if t == "map":
            kn = s["key"].get("locationName", "key")
            vn = s["value"].get("locationName", "value")
            ki = self.q_decode_expr(s["key"]["shape"], "k", "p")
            vi = self.q_decode_expr(s["value"]["shape"], "k", "p")
            return (f"codec::q_map(q, &{key}, &{path}, v, {rust_str(kn)}, {rust_str(vn)}, "
                    f"|q, k, p, v| Ok({ki}), |q, k, p, v| Ok({vi}))?")
        fn = {"string": "q_string", "integer": "q_i32", "long": "q_i64", "double": "q_f64", "float": "q_f64",
              "boolean": "q_bool", "timestamp": "q_timestamp", "blob": "q_blob"}[t]
        q = "" if t == "string" else "?"
        return f"codec::{fn}(q, &{key}){q}"

    def gen_query_decoders(self):
        lines = []
        for name in sorted(self.decode):
            s = self.shapes[name]
            if s["type"] != "structure":
                continue
            tn = self.tname(name)
            lines += [f"impl {tn} {{",
                      "    /// Decodes the members under `key` (the whole form when empty).",
                      "    #[allow(unused_variables)]",
                      "    pub fn from_query(q: &QueryParams, key: &str, path: &codec::Path<'_>, v: &mut Violations) -> Result<Option<Self>, Error> {",
                      "        if !key.is_empty() && !codec::q_present(q, key) {",
                      "            return Ok(None);",
                      "        }"]
            lines += self.members_decode(s, "query")
            lines += ["    }", "}", ""]
        return lines

    def members_decode(self, s, mode):
        lines = []
        req = set(s.get("required", []))  # inputs: as the model says
        members = s["members"]
        for mn_, mm in members.items():
            f = snake(mn_).replace("r#", "")
            val = f"m_{f}"
            wire = mm.get("locationName", mn_)
            shape = mm["shape"]
            lines.append(f"        let p_{f} = codec::Path::Member(path, {rust_str(mn_)});")
            if mode == "query":
                lines.append(f"        let k_{f} = codec::key(key, {rust_str(mn_)});")
                lines.append(f"        let {val} = {self.q_decode_expr(shape, 'k_' + f, 'p_' + f)};")
                present = f"codec::q_present(q, &k_{f})"
            else:
                loc = mm.get("location")
                if loc == "uri":
                    if self.is_enum(shape):
                        tn = self.tname(shape)
                        lines.append(f"        let {val} = codec::h_label_enum(m, {rust_str(wire)}, &p_{f}, v, {tn}::parse, {tn}::SET);")
                    else:
                        lines.append(f"        let {val} = codec::h_label(m, {rust_str(wire)});")
                    present = f"m.label({rust_str(wire)}).is_some()"
                elif loc == "querystring":
                    lines.append(f"        let {val} = {self.h_query_expr(shape, wire, 'p_' + f)};")
                    present = f"codec::h_query_present(query, {rust_str(wire)})"
                elif loc is not None:
                    raise SystemExit(f"unsupported location {loc}")
                else:
                    lines.append(f"        let j_{f} = codec::j_field(j, {rust_str(wire)});")
                    lines.append(f"        let {val} = match j_{f} {{ Some(x) => {self.j_decode_expr(shape, 'x', 'p_' + f)}, None => None }};")
                    present = f"j_{f}.is_some()"
            if mn_ in req:
                lines.append(f"        if {val}.is_none() && !{present} {{")
                lines.append(f"            v.null(&p_{f});")
                lines.append("        }")
            chk = self.checks(shape, "x", f"p_{f}", self.sensitive(shape, mm))
            if chk:
                lines.append(f"        if let Some(x) = &{val} {{")
                lines += ["            " + c for c in chk]
                lines.append("        }")
        for mn_ in members:
            if mn_ in req:
                f = snake(mn_).replace("r#", "")
                lines.append(f"        let Some(m_{f}) = m_{f} else {{ return Ok(None) }};")
        fields = ", ".join(f"{snake(mn_)}: m_{snake(mn_).replace('r#', '')}" for mn_ in members)
        lines.append(f"        Ok(Some(Self {{ {fields} }}))")
        return lines

    # ------------------------------------------------------------ JSON decode

    def j_decode_expr(self, name, val, path):
        s = self.shapes[name]
        t = s["type"]
        if self.is_enum(name):
            tn = self.tname(name)
            return f"codec::j_enum({val}, &{path}, v, {tn}::parse, {tn}::SET)?"
        if t == "structure":
            return f"{self.tname(name)}::from_json({val}, &{path}, v)?"
        if t == "list":
            inner = self.j_decode_expr(s["member"]["shape"], "x", "p")
            return f"codec::j_list({val}, &{path}, v, |x, p, v| Ok({inner}))?"
        if t == "map":
            kt = self.shapes[s["key"]["shape"]]
            if self.is_enum(s["key"]["shape"]):
                ktn = self.tname(s["key"]["shape"])
                kexpr = f"codec::j_map_key_enum(k, p, v, {ktn}::parse, {ktn}::SET)"
            else:
                kexpr = "Some(k.to_owned())"
            inner = self.j_decode_expr(s["value"]["shape"], "x", "p")
            return f"codec::j_map({val}, &{path}, v, |k, p, v| {kexpr}, |x, p, v| Ok({inner}))?"
        fn = {"string": "j_string", "integer": "j_i32", "long": "j_i64", "double": "j_f64", "float": "j_f64",
              "boolean": "j_bool", "timestamp": "j_timestamp", "blob": "j_blob"}[t]
        return f"codec::{fn}({val}, &{path})?"

    def h_query_expr(self, name, wire, path):
        s = self.shapes[name]
        t = s["type"]
        if self.is_enum(name):
            tn = self.tname(name)
            return f"codec::h_query_enum(query, {rust_str(wire)}, &{path}, v, {tn}::parse, {tn}::SET)"
        if t == "list":
            item = s["member"]["shape"]
            if self.is_enum(item):
                tn = self.tname(item)
                return f"codec::h_query_list_enum(query, {rust_str(wire)}, &{path}, v, {tn}::parse, {tn}::SET)"
            return f"codec::h_query_list(query, {rust_str(wire)})"
        fn = {"string": "h_query_string", "integer": "h_query_i32", "long": "h_query_i64",
              "boolean": "h_query_bool", "double": "h_query_f64", "timestamp": "h_query_timestamp"}[t]
        q = "" if t == "string" else "?"
        return f"codec::{fn}(query, {rust_str(wire)}){q}"

    def gen_json_decoders(self, inputs):
        lines = []
        for name in sorted(self.decode):
            s = self.shapes[name]
            if s["type"] != "structure":
                continue
            tn = self.tname(name)
            if name in inputs:
                lines += [f"impl {tn} {{",
                          "    /// Decodes the path labels, the query string and the JSON body.",
                          "    #[allow(unused_variables)]",
                          "    pub fn from_http(m: &Matched, query: &[(String, String)], j: &Value, path: &codec::Path<'_>, v: &mut Violations) -> Result<Option<Self>, Error> {"]
                lines += self.members_decode(s, "http")
                lines += ["    }", "}", ""]
            # Nested use: only the body (no labels, no query).
            if not any(mm.get("location") for mm in s["members"].values()):
                if True:
                    lines += [f"impl {tn} {{",
                              "    /// Decodes a JSON object.",
                              "    #[allow(unused_variables)]",
                              "    pub fn from_json(j: &Value, path: &codec::Path<'_>, v: &mut Violations) -> Result<Option<Self>, Error> {",
                              "        codec::j_object(j, path)?;"]
                    lines += self.members_decode(s, "json")
                    lines += ["    }", "}", ""]
        return lines

    # ------------------------------------------------------------ encoders

    def xml_write(self, name, val, elem, depth=0):
        """Statements writing `val` (a reference) as element `elem`."""
        s = self.shapes[name]
        t = s["type"]
        if self.is_enum(name):
            return [f"x.text({elem}, {val}.as_str());"]
        if t == "structure":
            return [f"x.open({elem});", f"{val}.to_xml(x);", f"x.close({elem});"]
        if t == "list":
            item = f"i{depth}"
            inner = self.xml_write(s["member"]["shape"], item, rust_str(s["member"].get("locationName", "member")), depth + 1)
            return [f"x.open({elem});", f"for {item} in {val}.iter() {{"] + ["    " + l for l in inner] + ["}", f"x.close({elem});"]
        if t == "map":
            kk, vv = f"k{depth}", f"v{depth}"
            kn = rust_str(s["key"].get("locationName", "key"))
            vn = rust_str(s["value"].get("locationName", "value"))
            inner = self.xml_write(s["key"]["shape"], kk, kn, depth + 1) + self.xml_write(s["value"]["shape"], vv, vn, depth + 1)
            return ([f"x.open({elem});", f"for ({kk}, {vv}) in {val}.iter() {{", "    x.open(\"entry\");"]
                    + ["    " + l for l in inner] + ["    x.close(\"entry\");", "}", f"x.close({elem});"])
        return [{
            "string": f"x.text({elem}, {val});",
            "boolean": f"x.bool({elem}, *{val});",
            "integer": f"x.text({elem}, &{val}.to_string());",
            "long": f"x.text({elem}, &{val}.to_string());",
            "double": f"x.text({elem}, &codec::xml_double(*{val}));",
            "float": f"x.text({elem}, &codec::xml_double(*{val}));",
            "timestamp": f"x.text({elem}, &crate::iso8601(*{val}));",
            "blob": f"x.text({elem}, &codec::base64(&{val}));",
        }[t]]

    def json_expr(self, name, val, depth=0):
        s = self.shapes[name]
        t = s["type"]
        if self.is_enum(name):
            return f"Value::String({val}.as_str().to_owned())"
        if t == "structure":
            return f"{val}.to_json()"
        if t == "list":
            item = f"i{depth}"
            return f"Value::Array({val}.iter().map(|{item}| {self.json_expr(s['member']['shape'], item, depth + 1)}).collect())"
        if t == "map":
            kk, vv = f"k{depth}", f"v{depth}"
            kexpr = f"{kk}.as_str().to_owned()" if self.is_enum(s["key"]["shape"]) else f"{kk}.clone()"
            return (f"Value::Object({val}.iter().map(|({kk}, {vv})| ({kexpr}, "
                    f"{self.json_expr(s['value']['shape'], vv, depth + 1)})).collect())")
        return {
            "string": f"Value::String({val}.clone())",
            "boolean": f"Value::Bool(*{val})",
            "integer": f"Value::from(*{val})",
            "long": f"Value::from(*{val})",
            "double": f"codec::json_double(*{val})",
            "float": f"codec::json_double(*{val})",
            "timestamp": f"crate::epoch_seconds(*{val})",
            "blob": f"Value::String(codec::base64(&{val}))",
        }[t]

    def gen_encoders(self):
        lines = []
        for name in sorted(self.encode):
            s = self.shapes[name]
            if s["type"] != "structure":
                continue
            tn = self.tname(name)
            req = self.required(name)
            lines.append(f"impl {tn} {{")
            if self.protocol == "query":
                lines += ["    /// Writes the members as XML elements.",
                          "    #[allow(unused_variables)]",
                          "    pub fn to_xml(&self, x: &mut XmlOut) {"]
                for mn_, mm in s["members"].items():
                    f = snake(mn_)
                    elem = rust_str(mm.get("locationName", mn_))
                    if mn_ in req:
                        lines += ["        " + l for l in self.xml_write(mm["shape"], f"(&self.{f})", elem)]
                    else:
                        lines.append(f"        if let Some(val) = &self.{f} {{")
                        lines += ["            " + l for l in self.xml_write(mm["shape"], "val", elem)]
                        lines.append("        }")
                lines.append("    }")
            else:
                lines += ["    /// The members as a JSON object.",
                          "    pub fn to_json(&self) -> Value {",
                          "        #[allow(unused_mut)]",
                          "        let mut o = Map::new();"]
                for mn_, mm in s["members"].items():
                    f = snake(mn_)
                    if mm.get("location"):
                        continue
                    wire = rust_str(mm.get("locationName", mn_))
                    if mn_ in req:
                        lines.append(f"        o.insert({wire}.to_owned(), {self.json_expr(mm['shape'], f'(&self.{f})')});")
                    else:
                        lines.append(f"        if let Some(val) = &self.{f} {{")
                        lines.append(f"            o.insert({wire}.to_owned(), {self.json_expr(mm['shape'], 'val')});")
                        lines.append("        }")
                lines += ["        Value::Object(o)", "    }"]
            lines += ["}", ""]
        return lines

    # ------------------------------------------------------------ trait and dispatch

    def sig(self, o):
        op = self.m["operations"][o]
        inp = self.tname(op["input"]["shape"]) if "input" in op else None
        out = self.tname(op["output"]["shape"]) if "output" in op else "()"
        return inp, out

    def gen_trait(self):
        lines = [f"/// Every {self.title} operation. A method not overridden answers",
                 "/// `NotImplemented`, naming the operation.",
                 f"pub trait {self.trait}: Sync {{",
                 "    /// Who is calling (account and region).",
                 "    type Caller: Sync;", ""]
        for o in self.ops:
            inp, out = self.sig(o)
            arg = f", input: {inp}" if inp else ""
            lines += [f"    /// {o}.",
                      f"    fn {snake(o)}(&self, caller: &Self::Caller{arg}) -> impl Future<Output = Result<{out}, Error>> + Send {{",
                      f"        let _ = (caller{', input' if inp else ''});",
                      f"        async {{ Err(codec::not_implemented({rust_str(self.title)}, {rust_str(o)})) }}",
                      "    }", ""]
        lines += ["}", ""]
        return lines

    def gen_dispatch(self):
        # Each operation's future is boxed, so that the dispatcher's own
        # future is as small as its largest input, not its largest
        # operation (a future the HTTP layer moves about).
        lines = []
        if self.protocol == "query":
            enum = "V1Action" if self.key == "ses_v1" else "SnsAction"
            lines += ["/// Decodes the action's input from the form, calls the operation and",
                      "/// returns the members of its result as XML (empty when it has none).",
                      f"pub async fn dispatch<S: {self.trait}>(svc: &S, caller: &S::Caller, action: {enum}, q: &QueryParams) -> Result<Vec<u8>, Error> {{",
                      "    #[allow(unused_mut)]",
                      "    let mut x = XmlOut::new();",
                      "    match action {"]
            for o in self.ops:
                inp, out = self.sig(o)
                lines.append(f"        {enum}::{o} => {{")
                if inp:
                    lines += ["            let mut v = Violations::default();",
                              f"            let input = {inp}::from_query(q, \"\", &codec::Path::Root, &mut v)?;",
                              "            let input = v.finish(input)?;",
                              f"            let out = Box::pin(svc.{snake(o)}(caller, input)).await?;"]
                else:
                    lines.append(f"            let out = Box::pin(svc.{snake(o)}(caller)).await?;")
                if out != "()":
                    lines.append("            out.to_xml(&mut x);")
                else:
                    lines.append("            let () = out;")
                lines.append("        }")
            lines += ["    }", "    Ok(x.finish())", "}", ""]
        else:
            lines += ["/// Decodes the operation's input from the path labels, query string and",
                      "/// JSON body, calls the operation and returns its output as JSON.",
                      f"pub async fn dispatch<S: {self.trait}>(svc: &S, caller: &S::Caller, m: &Matched, query: &[(String, String)], body: &[u8]) -> Result<Vec<u8>, Error> {{",
                      "    match m.op {"]
            for o in self.ops:
                inp, out = self.sig(o)
                lines.append(f"        V2Operation::{o} => {{")
                if inp:
                    has_body = any(not mm.get("location") for mm in self.shapes[self.m["operations"][o]["input"]["shape"]]["members"].values())
                    legacy = o in {r[0] for r in LEGACY_V2_ROUTES if r[1] == "GET"}
                    if has_body and legacy:
                        lines.append(f"            let j = if codec::blank(body) && !query.is_empty() {{ legacy_{snake(o)}(query)? }} else {{ codec::json_body(body)? }};")
                    elif has_body:
                        lines.append("            let j = codec::json_body(body)?;")
                    else:
                        lines.append("            let j = Value::Null;")
                    lines += ["            let mut v = Violations::default();",
                              f"            let input = {inp}::from_http(m, query, &j, &codec::Path::Root, &mut v)?;",
                              "            let input = v.finish(input)?;",
                              f"            let out = Box::pin(svc.{snake(o)}(caller, input)).await?;"]
                else:
                    lines.append(f"            let out = Box::pin(svc.{snake(o)}(caller)).await?;")
                if out != "()":
                    lines.append("            Ok(codec::json_out(out.to_json()))")
                else:
                    lines += ["            let () = out;", "            Ok(b\"{}\".to_vec())"]
                lines.append("        }")
            lines += ["    }", "}", ""]
            for o, method, _ in LEGACY_V2_ROUTES:
                if method != "GET":
                    continue
                shape = self.shapes[self.m["operations"][o]["input"]["shape"]]
                lines += [f"/// {o} on its old GET route: the body's members come from the query string.",
                          f"fn legacy_{snake(o)}(query: &[(String, String)]) -> Result<Value, Error> {{",
                          "    let mut o = Map::new();"]
                for mn_, mm in shape["members"].items():
                    t = self.shapes[mm["shape"]]["type"]
                    if t == "string":
                        lines.append(f"    if let Some(s) = codec::h_query_string(query, {rust_str(mn_)}) {{ o.insert({rust_str(mn_)}.into(), Value::String(s)); }}")
                    elif t in ("integer", "long"):
                        lines.append(f"    if let Some(n) = codec::h_query_i64(query, {rust_str(mn_)})? {{ o.insert({rust_str(mn_)}.into(), Value::from(n)); }}")
                lines += ["    Ok(Value::Object(o))", "}", ""]
        return lines

    def render(self):
        meta = self.m["metadata"]
        lines = [
            "// Auto generated by tools/gen_wire_ops.py from AWS's service model",
            f"// ({meta['serviceId']} {meta['apiVersion']}). Do not edit by hand.",
            "",
            f"//! {self.title}: types, decoders, encoders, the `{self.trait}` trait and its dispatcher.",
            "",
            "#![allow(clippy::all, unused_imports, unused_parens, non_camel_case_types)]",
            "",
            "use crate::codec::{self, Violations};",
            "use crate::query::QueryParams;",
            "use crate::router::Matched;",
            "use crate::xml::XmlOut;",
            "use crate::generated::{V1Action, V2Operation, SnsAction};",
            "use serde_json::{Map, Value};",
            "use sesame_model::{Error, Millis};",
            "",
        ]
        lines += self.gen_types()
        if self.protocol == "query":
            lines += self.gen_query_decoders()
        else:
            inputs = {self.m["operations"][o]["input"]["shape"] for o in self.ops if "input" in self.m["operations"][o]}
            lines += self.gen_json_decoders(inputs)
        lines += self.gen_encoders()
        lines += self.gen_trait()
        lines += self.gen_dispatch()
        return "\n".join(lines) + "\n"


def render_ops(v1, v2, sns):
    lines = [
        "// Auto generated by tools/gen_wire_ops.py from AWS's SES and SNS service models",
        f"// (ses {v1['metadata']['apiVersion']}, sesv2 {v2['metadata']['apiVersion']}, sns {sns['metadata']['apiVersion']}). Do not edit by hand.",
        "",
        "pub mod ses_v1;",
        "pub mod sesv2;",
        "pub mod sns;",
        "",
        "/// How a Query operation's response body is shaped.",
        "#[derive(Debug, Clone, Copy, PartialEq, Eq)]",
        "pub enum V1Output {",
        "    /// No output shape: no `<XResult>` element at all.",
        "    None,",
        "    /// An output shape without members: an empty `<XResult/>`.",
        "    Empty,",
        "    /// An output shape with members.",
        "    Members,",
        "}",
        "",
    ]
    for model, enum, title in ((v1, "V1Action", "SES v1 (Query) action"), (sns, "SnsAction", "SNS (Query) action")):
        shapes = model["shapes"]
        ops = sorted(model["operations"])
        lines += [f"/// Every {title}.", "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]", f"pub enum {enum} {{"]
        lines += [f"    {o}," for o in ops]
        lines += ["}", "", f"impl {enum} {{", f"    pub const ALL: &'static [{enum}] = &["]
        lines += [f"        {enum}::{o}," for o in ops]
        lines += ["    ];", "", "    pub fn name(self) -> &'static str {", "        match self {"]
        lines += [f'            {enum}::{o} => "{o}",' for o in ops]
        lines += ["        }", "    }", "", "    pub fn from_name(name: &str) -> Option<Self> {", "        match name {"]
        lines += [f'            "{o}" => Some({enum}::{o}),' for o in ops]
        lines += ["            _ => None,", "        }", "    }", "", "    pub fn output(self) -> V1Output {", "        match self {"]
        for o in ops:
            out = model["operations"][o].get("output")
            if not out:
                kind = "None"
            elif shapes[out["shape"]].get("members"):
                kind = "Members"
            else:
                kind = "Empty"
            lines.append(f"            {enum}::{o} => V1Output::{kind},")
        lines += ["        }", "    }", "}", ""]
    ops2 = sorted(v2["operations"])
    lines += ["/// Every SESv2 (REST-JSON) operation.", "#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]", "pub enum V2Operation {"]
    lines += [f"    {o}," for o in ops2]
    lines += ["}", "", "impl V2Operation {", "    pub fn name(self) -> &'static str {", "        match self {"]
    lines += [f'            V2Operation::{o} => "{o}",' for o in ops2]
    lines += ["        }", "    }", "}", ""]
    routes = [(o, v2["operations"][o]["http"]["method"], v2["operations"][o]["http"]["requestUri"]) for o in ops2]
    routes += LEGACY_V2_ROUTES
    lines += [
        "/// One HTTP route of the v2 API: method and URI template.",
        "#[derive(Debug, Clone, Copy)]",
        "pub struct V2Route {",
        "    pub op: V2Operation,",
        "    pub method: &'static str,",
        "    pub path: &'static str,",
        "}",
        "",
        "/// The model's routes, then the routes older SDKs still use.",
        "pub const V2_ROUTES: &[V2Route] = &[",
    ]
    for o, m, p in routes:
        path = p.split("?")[0]
        lines += ["    V2Route {", f"        op: V2Operation::{o},", f'        method: "{m}",', f'        path: "{path}",', "    },"]
    lines += ["];", ""]
    return "\n".join(lines)


def render_served(apis, api_src):
    """The trait impls of sesame-api: one method per `pub async fn vN_<op>`
    found in a family module, calling it. An operation with no such
    function keeps the trait's NotImplemented default."""
    found = {}  # (prefix, op snake) -> module
    for f in sorted(os.listdir(api_src)):
        if not f.endswith(".rs") or f in ("lib.rs", "served.rs"):
            continue
        for m in re.finditer(r"^pub async fn (v1|v2|sns)_(\w+)\(", open(os.path.join(api_src, f)).read(), re.M):
            key = (m.group(1), m.group(2))
            if key in found:
                raise SystemExit(f"{m.group(1)}_{m.group(2)} is defined twice (in {found[key]} and {f[:-3]})")
            found[key] = f[:-3]
    lines = [
        "// Auto generated by tools/gen_wire_ops.py: one trait method for each",
        "// `pub async fn <api>_<operation>` in this crate's family modules. Do not edit by hand.",
        "",
        "use crate::*;",
        "",
    ]
    for prefix, api, mod in (("v1", apis["ses_v1"], "v1"), ("v2", apis["sesv2"], "v2"), ("sns", apis["sns"], "sns")):
        ops = {snake(o): o for o in api.ops}
        for (p, name), module in found.items():
            if p == prefix and name not in ops:
                raise SystemExit(f"{module}.rs: {p}_{name} names no {api.title} operation")
        lines += [f"impl {mod}::{api.trait} for Api {{", "    type Caller = Scope;"]
        for o in api.ops:
            module = found.get((prefix, snake(o)))
            if not module:
                continue
            op = api.m["operations"][o]
            inp = f"{mod}::{api.tname(op['input']['shape'])}" if "input" in op else None
            out = f"{mod}::{api.tname(op['output']['shape'])}" if "output" in op else "()"
            arg = f", input: {inp}" if inp else ""
            lines += ["",
                      f"    async fn {snake(o)}(&self, caller: &Scope{arg}) -> Result<{out}, Error> {{",
                      f"        {module}::{prefix}_{snake(o)}(self, caller{', input' if inp else ''}).await",
                      "    }"]
        lines += ["}", ""]
    return "\n".join(lines)


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    check = "--check" in sys.argv
    models = args[0] if args else os.path.join(ROOT, "models")
    out = args[1] if len(args) > 1 else os.path.join(ROOT, "crates", "sesame-wire", "src")
    load = lambda f: json.load(open(os.path.join(models, f)))
    v1 = load("ses-2010-12-01-service-2.json")
    v2 = load("sesv2-2019-09-27-service-2.json")
    sns = load("sns-2010-03-31-service-2.json")
    apis = {
        "ses_v1": Api(v1, "ses_v1", "SES v1", "SesV1", "query"),
        "sesv2": Api(v2, "sesv2", "SESv2", "SesV2", "rest-json"),
        "sns": Api(sns, "sns", "SNS", "Sns", "query"),
    }
    files = {
        "generated.rs": render_ops(v1, v2, sns),
        "generated/ses_v1.rs": apis["ses_v1"].render(),
        "generated/sesv2.rs": apis["sesv2"].render(),
        "generated/sns.rs": apis["sns"].render(),
    }
    api_src = os.path.join(ROOT, "crates", "sesame-api", "src")
    served = render_served(apis, api_src)
    stale = []
    targets = [(os.path.join(out, rel), text) for rel, text in files.items()]
    targets.append((os.path.join(api_src, "served.rs"), served))
    for path, text in targets:
        if check:
            current = open(path).read() if os.path.exists(path) else ""
            if current != text:
                stale.append(path)
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
    if check:
        if stale:
            print("stale (run tools/gen_wire_ops.py): " + ", ".join(stale), file=sys.stderr)
            sys.exit(1)
        print("the generated wire layer matches the models")


if __name__ == "__main__":
    main()
