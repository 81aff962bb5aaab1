//! The HTML index of a directory without `index.html`: every entry with a link, its size and
//! its CID. Names are HTML-escaped in text and percent-encoded in links.

use std::fmt::Write;

use cairn_dag::Cid;
use cairn_dag::dir::NodeKind;
use cairn_node::export::LsEntry;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Bumped when the page's markup changes, so `ETag`s of generated listings change with it.
pub(crate) const LISTING_VERSION: &str = concat!("cairn-", env!("CARGO_PKG_VERSION"), "-1");

/// What stays unencoded in a link to an entry: RFC 3986 unreserved characters.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// `text` escaped for HTML text and attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `name` as one percent-encoded path segment.
pub(crate) fn encode_segment(name: &str) -> String {
    utf8_percent_encode(name, SEGMENT).to_string()
}

/// Bytes in binary units, e.g. `1.5 MiB`.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The index page of directory `cid` shown at `/ipfs/{root}/{segments...}/`; `segments` are
/// decoded names (the parent link is shown below the root).
pub(crate) fn render(root: &Cid, segments: &[String], cid: &Cid, entries: &[LsEntry]) -> String {
    let mut shown = format!("/ipfs/{root}/");
    for s in segments {
        shown.push_str(s);
        shown.push('/');
    }
    let title = escape(&shown);
    let mut html = String::with_capacity(512 + entries.len() * 300);
    let _ = write!(
        html,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>Index of {title}</title>\n<style>\
         body{{font-family:system-ui,sans-serif;margin:2em}}\
         table{{border-collapse:collapse}}td,th{{padding:.2em 1em;text-align:left}}\
         td.size{{text-align:right;white-space:nowrap}}code{{font-size:.85em;color:#555}}\
         </style>\n</head>\n<body>\n<h1>Index of {title}</h1>\n\
         <p>CID <code>{cid}</code>, {n} entries</p>\n<table>\n\
         <thead><tr><th>Name</th><th>Size</th><th>CID</th></tr></thead>\n<tbody>\n",
        n = entries.len(),
    );
    if !segments.is_empty() {
        html.push_str("<tr><td><a href=\"../\">..</a></td><td></td><td></td></tr>\n");
    }
    for entry in entries {
        let dir = matches!(entry.kind, NodeKind::Directory { .. });
        let slash = if dir { "/" } else { "" };
        let _ = writeln!(
            html,
            "<tr><td><a href=\"./{href}{slash}\">{name}{slash}</a></td>\
             <td class=\"size\" title=\"{bytes} bytes\">{size}</td>\
             <td><a href=\"/ipfs/{cid}\"><code>{cid}</code></a></td></tr>",
            href = encode_segment(&entry.name),
            name = escape(&entry.name),
            bytes = entry.size,
            size = human(entry.size),
            cid = entry.cid,
        );
    }
    html.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    html
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, kind: NodeKind, size: u64) -> LsEntry {
        LsEntry {
            name: name.to_owned(),
            cid: "bafkqaaa".parse().unwrap(),
            kind,
            size,
        }
    }

    #[test]
    fn names_are_escaped_and_encoded() {
        assert_eq!(
            escape(r#"<a href="x">&'"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(
            encode_segment("a b/c?d#e%:é"),
            "a%20b%2Fc%3Fd%23e%25%3A%C3%A9"
        );
        assert_eq!(encode_segment("file-1.0_~x"), "file-1.0_~x");
        let root: Cid = "bafkqaaa".parse().unwrap();
        let html = render(
            &root,
            &["sub <dir>".to_owned()],
            &root,
            &[
                entry(
                    "<script>alert(1)</script>.txt",
                    NodeKind::File { size: 1536 },
                    1536,
                ),
                entry("d", NodeKind::Directory { sharded: false }, 10),
            ],
        );
        assert!(!html.contains("<script>"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;.txt"));
        assert!(html.contains("href=\"./%3Cscript%3Ealert%281%29%3C%2Fscript%3E.txt\""));
        assert!(html.contains("href=\"./d/\">d/</a>"));
        assert!(html.contains("1.5 KiB") && html.contains("title=\"1536 bytes\""));
        assert!(html.contains("Index of /ipfs/bafkqaaa/sub &lt;dir&gt;/"));
        assert!(html.contains("href=\"../\""));
        let top = render(&root, &[], &root, &[]);
        assert!(!top.contains("href=\"../\""));
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(0), "0 B");
        assert_eq!(human(1023), "1023 B");
        assert_eq!(human(1024), "1.0 KiB");
        assert_eq!(human(5 << 30), "5.0 GiB");
    }
}
