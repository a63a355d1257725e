//! Email templates: named subject, text and HTML parts with Handlebars
//! placeholders, and SES's limits on them.

use crate::Millis;
use crate::error::{Error, Result};
use crate::tags::Tag;
use serde::{Deserialize, Serialize};

/// SES's limit of templates per account and region.
pub const MAX_TEMPLATES: u32 = 10_000;
/// SES's limit on a template's total size.
pub const MAX_TEMPLATE_BYTES: usize = 500 * 1024;

/// A template's three parts; any may be absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateParts {
    pub subject: Option<String>,
    pub text: Option<String>,
    pub html: Option<String>,
}

impl TemplateParts {
    pub fn size(&self) -> usize {
        [&self.subject, &self.text, &self.html]
            .iter()
            .map(|p| p.as_ref().map_or(0, String::len))
            .sum()
    }

    /// SES's size limit and Sesame's bound on nesting; returns the parts'
    /// combined [`Shape`].
    pub fn validate(&self) -> Result<Shape> {
        if self.size() > MAX_TEMPLATE_BYTES {
            return Err(Error::new(
                crate::ErrorKind::InvalidTemplate,
                format!(
                    "Template is {} bytes; the maximum is {MAX_TEMPLATE_BYTES}.",
                    self.size()
                ),
            ));
        }
        let mut all = Shape::default();
        for part in [&self.subject, &self.text, &self.html]
            .into_iter()
            .flatten()
        {
            let s = shape(part)?;
            all.depth = all.depth.max(s.depth);
            all.loops = all.loops.max(s.loops);
        }
        Ok(all)
    }
}

/// How deeply blocks, subexpressions and literals may nest in a template.
/// Handlebars parses and renders by recursion, so without a bound a small
/// template (`{{#if a}}` 2,000 times) overflows a thread's stack; real
/// templates nest a handful of levels.
pub const MAX_NESTING: usize = 100;

/// What the renderer's work depends on: an upper bound on how deeply the
/// parser and renderer recurse, and on how many `{{#each}}` loops run one
/// inside another (through an inline partial too).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub depth: usize,
    pub loops: usize,
}

/// One open block while scanning.
struct Open {
    each: bool,
    inline: bool,
    /// `{{else if …}}` links, each a level deeper when rendered.
    links: usize,
}

fn invalid_template(why: impl std::fmt::Display) -> Error {
    Error::new(
        crate::ErrorKind::InvalidTemplate,
        format!("The template is not supported: {why}"),
    )
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

/// Where the tag whose content starts at `from` ends (after its `}}`), and
/// how many of `(`, `[` and `{` it holds: every one could open a level of
/// the parser's recursion, so their count bounds the tag's own depth
/// however its strings and paths are read. String literals are skipped
/// only to find the tag's end, so a `}}` inside one does not end it.
fn tag(b: &[u8], from: usize) -> (usize, usize) {
    let (mut i, mut openers, mut quote) = (from, 0, None::<u8>);
    while i < b.len() {
        let c = b[i];
        if matches!(c, b'(' | b'[' | b'{') {
            openers += 1;
        }
        match quote {
            Some(_) if c == b'\\' => i += 1,
            Some(q) if c == q => quote = None,
            Some(_) => {}
            None if c == b'"' || c == b'\'' => quote = Some(c),
            None if c == b'}' && b.get(i + 1) == Some(&b'}') => return (i + 2, openers),
            None => {}
        }
        i += 1;
    }
    (b.len(), openers)
}

/// The helper or partial name at the start of a tag's content.
fn name_at(b: &[u8], from: usize) -> &[u8] {
    let start = from
        + b[from.min(b.len())..]
            .iter()
            .take_while(|c| c.is_ascii_whitespace())
            .count();
    let len = b[start.min(b.len())..]
        .iter()
        .take_while(|c| !c.is_ascii_whitespace() && !matches!(c, b'}' | b'~' | b'('))
        .count();
    &b[start.min(b.len())..(start + len).min(b.len())]
}

/// Scans a template as Handlebars' grammar reads it (text, escapes,
/// comments, raw blocks, tags) and bounds its [`Shape`]. Refuses nesting
/// deeper than [`MAX_NESTING`], and the partial forms that can recurse
/// without end: partial blocks, `@partial-block`, and a partial called
/// from inside an inline partial.
pub fn shape(src: &str) -> Result<Shape> {
    let b = src.as_bytes();
    let mut blocks: Vec<Open> = vec![];
    let mut shape = Shape::default();
    let (mut loops_out, mut loops_in) = (0, 0);
    let mut i = 0;
    while let Some(at) = find(b, b"{{", i) {
        let slashes = b[i..at].iter().rev().take_while(|c| **c == b'\\').count();
        if slashes == 1 {
            // `\{{` (or `\{{{{`) is text.
            i = at + 2;
            if b[i..].starts_with(b"{{") {
                i += 2;
            }
            continue;
        }
        let rest = &b[at..];
        if rest.starts_with(b"{{!--")
            && let Some(end) = find(b, b"--}}", at + 5)
        {
            i = end + 4;
            continue;
        }
        if rest.starts_with(b"{{!") {
            match find(b, b"}}", at + 3) {
                Some(end) => i = end + 2,
                None => break,
            }
            continue;
        }
        let opened: usize = blocks.iter().map(|o| 1 + o.links).sum();
        if rest.starts_with(b"{{{{") {
            // A raw block: its start tag, then text up to the next `{{{{`
            // (its end tag), then that tag.
            let (end, openers) = tag(b, at + 2);
            shape.depth = shape.depth.max(opened + 1 + openers);
            let Some(close) = find(b, b"{{{{", end) else {
                break;
            };
            i = tag(b, close + 2).0;
            continue;
        }
        let mut c = at + 2;
        if b.get(c) == Some(&b'~') {
            c += 1;
        }
        let (end, openers) = tag(b, c);
        i = end;
        match b.get(c) {
            Some(b'#') => {
                let (decorator, partial) =
                    (b.get(c + 1) == Some(&b'*'), b.get(c + 1) == Some(&b'>'));
                if partial {
                    return Err(invalid_template(
                        "partial blocks ({{#> …}}) are not supported.",
                    ));
                }
                let name = name_at(b, c + 1 + usize::from(decorator));
                blocks.push(Open {
                    each: !decorator && name == b"each",
                    inline: decorator && name == b"inline",
                    links: 0,
                });
            }
            Some(b'/') => {
                blocks.pop();
            }
            Some(b'>') => {
                if blocks.iter().any(|o| o.inline) {
                    return Err(invalid_template(
                        "an inline partial may not call a partial.",
                    ));
                }
                if name_at(b, c + 1).starts_with(b"@partial-block") {
                    return Err(invalid_template("@partial-block is not supported."));
                }
            }
            Some(b'^') => {
                if let Some(top) = blocks.last_mut() {
                    top.links += 1;
                }
            }
            _ if name_at(b, c) == b"else" => {
                if let Some(top) = blocks.last_mut() {
                    top.links += 1;
                }
            }
            _ => {}
        }
        let opened: usize = blocks.iter().map(|o| 1 + o.links).sum();
        shape.depth = shape.depth.max(opened + openers);
        if shape.depth > MAX_NESTING {
            return Err(invalid_template(format_args!(
                "it nests blocks, subexpressions or literals more than {MAX_NESTING} levels deep."
            )));
        }
        let loops = blocks.iter().filter(|o| o.each).count();
        if blocks.iter().any(|o| o.inline) {
            loops_in = loops_in.max(loops);
        } else {
            loops_out = loops_out.max(loops);
        }
    }
    if shape.depth > MAX_NESTING {
        return Err(invalid_template(format_args!(
            "it nests blocks, subexpressions or literals more than {MAX_NESTING} levels deep."
        )));
    }
    // A partial is called at most one level down (it may call none), so a
    // loop in one runs at most inside the loops around the call.
    shape.loops = loops_out + loops_in;
    Ok(shape)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Template {
    pub name: String,
    pub parts: TemplateParts,
    pub created_at: Millis,
    pub tags: Vec<Tag>,
}

/// SES's rule for the names of templates and configuration sets: 1 to 64
/// ASCII letters, digits, `_` and `-`.
pub fn is_ses_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// SES's template names: 1 to 64 ASCII letters, digits, `_` and `-`.
pub fn validate_name(name: &str) -> Result<()> {
    if is_ses_name(name) {
        Ok(())
    } else {
        Err(Error::invalid(format!(
            "Invalid template name <{name}>: it must have 1 to 64 characters: letters, digits, '_' and '-'."
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_size() {
        assert!(validate_name("welcome_v2-en").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("has space").is_err());
        assert!(validate_name(&"a".repeat(65)).is_err());
        let big = TemplateParts {
            html: Some("x".repeat(MAX_TEMPLATE_BYTES + 1)),
            ..Default::default()
        };
        assert_eq!(
            big.validate().unwrap_err().kind,
            crate::ErrorKind::InvalidTemplate
        );
    }

    fn nested(open: &str, close: &str, n: usize) -> String {
        format!("{}x{}", open.repeat(n), close.repeat(n))
    }

    #[test]
    fn nesting_is_bounded() {
        let ok = |s: &str| shape(s).unwrap();
        let refused = |s: &str| shape(s).unwrap_err().message;
        assert_eq!(
            ok("Hi {{name}}, {{#if a}}{{#each b}}{{this}}{{/each}}{{/if}}").depth,
            2
        );
        assert_eq!(
            ok(&nested("{{#if a}}", "{{/if}}", MAX_NESTING)).depth,
            MAX_NESTING
        );
        assert!(refused(&nested("{{#if a}}", "{{/if}}", MAX_NESTING + 1)).contains("100 levels"));
        assert!(shape(&nested("{{~#if a~}}", "{{~/if~}}", 2000)).is_err());
        assert!(
            shape(&format!("{{{{x {}}}}}", "(y ".repeat(2000))).is_err(),
            "subexpressions"
        );
        assert!(
            shape(&format!("{{{{x {}}}}}", "[".repeat(2000))).is_err(),
            "array literals"
        );
        // Blocks in sequence are not nested.
        ok(&"{{#if a}}x{{/if}}".repeat(5000));
        // else-if chains render one level deeper a link.
        let chain = format!("{{{{#if a}}}}{}{{{{/if}}}}", "{{else if b}}x".repeat(200));
        assert!(shape(&chain).is_err());
        // Closers hidden where the parser sees none cannot lower the count.
        for hide in [
            "{{!-- {{/if}} --}}",
            "{{! {{/if}}",
            "{{x \"}}{{/if}}\"}}",
            "\\{{/if}}",
            "{{{{raw}}}}{{/if}}{{{{/raw}}}}",
        ] {
            let s = format!("{{{{#if a}}}}{hide}").repeat(MAX_NESTING + 1);
            assert!(shape(&s).is_err(), "{hide}");
        }
        // A `\\{{` is text.
        assert_eq!(ok("\\{{#if a}}").depth, 0);
    }

    #[test]
    fn loops_and_partials() {
        let s = shape("{{#each a}}{{#each ../a}}x{{/each}}{{/each}}").unwrap();
        assert_eq!(s.loops, 2);
        let s =
            shape("{{#*inline \"p\"}}{{#each a}}{{/each}}{{/inline}}{{#each a}}{{> p}}{{/each}}")
                .unwrap();
        assert_eq!(s.loops, 2, "a loop in a partial called in a loop");
        assert!(shape("{{#*inline \"r\"}}{{> r}}{{/inline}}{{> r}}").is_err());
        assert!(shape("{{#> layout}}x{{/layout}}").is_err());
        assert!(shape("{{> @partial-block}}").is_err());
    }
}
