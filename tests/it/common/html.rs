//! Just enough HTML reading for the HTTP tests: start tags, their
//! attributes and their text. Our markup comes from maud, which always
//! quotes attributes with `"` and escapes text, so this stays small.

use std::collections::BTreeMap;

/// One start tag, as found in a document.
#[derive(Debug, Clone)]
pub struct Tag {
    /// Lower-case element name.
    pub name: String,
    /// Attributes, with entities decoded. A bare attribute maps to "".
    pub attrs: BTreeMap<String, String>,
    /// Byte offset of the `<`.
    pub start: usize,
    /// Byte offset just past the `>`.
    pub end: usize,
}

impl Tag {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs.get(name).map(String::as_str)
    }

    pub fn has(&self, name: &str) -> bool {
        self.attrs.contains_key(name)
    }

    /// The tag's id, or "".
    pub fn id(&self) -> &str {
        self.attr("id").unwrap_or("")
    }
}

/// Every start tag in `html`, in document order.
pub fn start_tags(html: &str) -> Vec<Tag> {
    let bytes = html.as_bytes();
    let mut tags = Vec::new();
    let mut i = 0;
    while let Some(offset) = html[i..].find('<') {
        let start = i + offset;
        i = start + 1;
        if !bytes.get(i).is_some_and(u8::is_ascii_alphabetic) {
            continue; // end tag, comment, doctype or stray `<`
        }
        let name_end = scan(bytes, i, |b| b.is_ascii_alphanumeric() || b == b'-');
        let name = html[i..name_end].to_ascii_lowercase();
        let mut attrs = BTreeMap::new();
        let mut j = name_end;
        loop {
            j = scan(bytes, j, |b| b.is_ascii_whitespace());
            match bytes.get(j) {
                None => break,
                Some(b'>') => {
                    j += 1;
                    break;
                }
                Some(b'/') => {
                    j += 1;
                    continue;
                }
                Some(_) => {}
            }
            let attr_end = scan(bytes, j, |b| !(b.is_ascii_whitespace() || b"=>/".contains(&b)));
            let attr = html[j..attr_end].to_ascii_lowercase();
            j = attr_end;
            let mut value = String::new();
            if bytes.get(j) == Some(&b'=') {
                j += 1;
                match bytes.get(j) {
                    Some(&quote @ (b'"' | b'\'')) => {
                        let value_end = scan(bytes, j + 1, |b| b != quote);
                        value = unescape(&html[j + 1..value_end]);
                        j = (value_end + 1).min(bytes.len());
                    }
                    _ => {
                        let value_end = scan(bytes, j, |b| !(b.is_ascii_whitespace() || b == b'>'));
                        value = unescape(&html[j..value_end]);
                        j = value_end;
                    }
                }
            }
            if attr.is_empty() {
                j += 1; // a stray character; skip it rather than loop
            } else {
                attrs.insert(attr, value);
            }
        }
        tags.push(Tag { name, attrs, start, end: j });
        i = j;
    }
    tags
}

fn scan(bytes: &[u8], mut i: usize, keep: impl Fn(u8) -> bool) -> usize {
    while i < bytes.len() && keep(bytes[i]) {
        i += 1;
    }
    i
}

/// Every `<name …>` start tag.
pub fn tags(html: &str, name: &str) -> Vec<Tag> {
    start_tags(html).into_iter().filter(|t| t.name == name).collect()
}

/// The first element with this id, if any.
pub fn by_id(html: &str, id: &str) -> Option<Tag> {
    start_tags(html).into_iter().find(|t| t.id() == id)
}

/// The first `<name>` element with this `data-part` (`lbs`, `lbs-msg`,
/// `state`, …), if any: how `app.js` finds what an update is for.
pub fn part(html: &str, name: &str, part: &str) -> Option<Tag> {
    start_tags(html).into_iter().find(|t| t.name == name && t.attr("data-part") == Some(part))
}

/// Every element that has a `data-part`, in document order.
pub fn all_parts(html: &str) -> Vec<Tag> {
    start_tags(html).into_iter().filter(|t| t.has("data-part")).collect()
}

/// The raw markup between a tag and its end tag (no nesting of the same
/// element is assumed, which holds for everything we look inside).
pub fn inner_html<'a>(html: &'a str, tag: &Tag) -> &'a str {
    let rest = &html[tag.end..];
    let close = format!("</{}", tag.name);
    let len = rest.to_ascii_lowercase().find(&close).unwrap_or(rest.len());
    &rest[..len]
}

/// The text inside a tag's element, tags stripped and entities decoded.
pub fn text(html: &str, tag: &Tag) -> String {
    strip_tags(inner_html(html, tag))
}

/// Text with every tag removed and entities decoded.
pub fn strip_tags(markup: &str) -> String {
    let mut out = String::with_capacity(markup.len());
    let mut in_tag = false;
    for c in markup.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    unescape(&out)
}

/// Decodes the entities maud writes, plus numeric ones.
pub fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        rest = &rest[amp..];
        let Some(semi) = rest.find(';').filter(|&s| s <= 10) else {
            out.push('&');
            rest = &rest[1..];
            continue;
        };
        let entity = &rest[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .or_else(|| entity.strip_prefix("#X"))
                .and_then(|hex| u32::from_str_radix(hex, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|dec| dec.parse().ok()))
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &rest[semi + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The `<form>` posting to `action`, with everything inside it.
pub fn form_with_action<'a>(html: &'a str, action: &str) -> Option<(Tag, &'a str)> {
    let form = tags(html, "form").into_iter().find(|f| f.attr("action") == Some(action))?;
    let inner = inner_html(html, &form);
    Some((form, inner))
}
