//! Content types of files served deserialized: by the file name's extension (a small table of
//! common web types), else sniffed from the first bytes (magic numbers, HTML, valid UTF-8 text).

/// How many leading bytes [`sniff`] looks at.
pub(crate) const SNIFF_LEN: u64 = 512;

/// Plain text.
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";
/// HTML.
pub(crate) const HTML: &str = "text/html; charset=utf-8";
/// Anything else.
pub(crate) const BINARY: &str = "application/octet-stream";

const EXTENSIONS: &[(&str, &str)] = &[
    ("7z", "application/x-7z-compressed"),
    ("avif", "image/avif"),
    ("bmp", "image/bmp"),
    ("bz2", "application/x-bzip2"),
    ("car", "application/vnd.ipld.car"),
    ("css", "text/css; charset=utf-8"),
    ("csv", "text/csv; charset=utf-8"),
    ("epub", "application/epub+zip"),
    ("flac", "audio/flac"),
    ("gif", "image/gif"),
    ("gz", "application/gzip"),
    ("htm", HTML),
    ("html", HTML),
    ("ico", "image/x-icon"),
    ("jpeg", "image/jpeg"),
    ("jpg", "image/jpeg"),
    ("js", "text/javascript; charset=utf-8"),
    ("json", "application/json"),
    ("jsonld", "application/ld+json"),
    ("m4a", "audio/mp4"),
    ("md", "text/markdown; charset=utf-8"),
    ("mjs", "text/javascript; charset=utf-8"),
    ("mkv", "video/x-matroska"),
    ("mov", "video/quicktime"),
    ("mp3", "audio/mpeg"),
    ("mp4", "video/mp4"),
    ("oga", "audio/ogg"),
    ("ogg", "audio/ogg"),
    ("ogv", "video/ogg"),
    ("opus", "audio/opus"),
    ("otf", "font/otf"),
    ("pdf", "application/pdf"),
    ("png", "image/png"),
    ("svg", "image/svg+xml"),
    ("tar", "application/x-tar"),
    ("tif", "image/tiff"),
    ("tiff", "image/tiff"),
    ("toml", "application/toml"),
    ("ttf", "font/ttf"),
    ("txt", TEXT),
    ("wasm", "application/wasm"),
    ("wav", "audio/wav"),
    ("webm", "video/webm"),
    ("webmanifest", "application/manifest+json"),
    ("webp", "image/webp"),
    ("woff", "font/woff"),
    ("woff2", "font/woff2"),
    ("xhtml", "application/xhtml+xml"),
    ("xml", "application/xml"),
    ("xz", "application/x-xz"),
    ("yaml", "application/yaml"),
    ("yml", "application/yaml"),
    ("zip", "application/zip"),
    ("zst", "application/zstd"),
];

/// The content type the extension of file name `name` implies, if it is a known one.
pub(crate) fn from_extension(name: &str) -> Option<&'static str> {
    let (stem, ext) = name.rsplit_once('.')?;
    if stem.is_empty() {
        return None; // ".bashrc" has no extension
    }
    let ext = ext.to_ascii_lowercase();
    EXTENSIONS
        .binary_search_by(|(e, _)| (*e).cmp(ext.as_str()))
        .ok()
        .map(|i| EXTENSIONS[i].1)
}

/// Binary signatures: (offset, magic, type).
const MAGIC: &[(usize, &[u8], &str)] = &[
    (0, b"\x89PNG\r\n\x1a\n", "image/png"),
    (0, b"\xff\xd8\xff", "image/jpeg"),
    (0, b"GIF87a", "image/gif"),
    (0, b"GIF89a", "image/gif"),
    (8, b"WEBP", "image/webp"),
    (0, b"%PDF-", "application/pdf"),
    (0, b"\x1f\x8b\x08", "application/gzip"),
    (0, b"PK\x03\x04", "application/zip"),
    (0, b"\0asm", "application/wasm"),
    (0, b"ID3", "audio/mpeg"),
    (0, b"OggS\0", "application/ogg"),
    (0, b"fLaC", "audio/flac"),
    (0, b"\x1a\x45\xdf\xa3", "video/webm"),
    (4, b"ftyp", "video/mp4"),
    (0, b"wOFF", "font/woff"),
    (0, b"wOF2", "font/woff2"),
];

/// Tags that start an HTML document when followed by a space or `>` (WHATWG MIME sniffing).
const HTML_TAGS: &[&[u8]] = &[
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<script",
    b"<iframe",
    b"<h1",
    b"<div",
    b"<font",
    b"<table",
    b"<a",
    b"<style",
    b"<title",
    b"<b",
    b"<body",
    b"<br",
    b"<p",
];

fn starts_with_ignore_case(data: &[u8], prefix: &[u8]) -> bool {
    data.len() >= prefix.len() && data[..prefix.len()].eq_ignore_ascii_case(prefix)
}

fn is_html(text: &[u8]) -> bool {
    if text.starts_with(b"<!--") {
        return true;
    }
    HTML_TAGS.iter().any(|tag| {
        starts_with_ignore_case(text, tag) && matches!(text.get(tag.len()), Some(b' ' | b'>'))
    })
}

/// Text: valid UTF-8 (a sequence cut at the end of the sample is fine) without the control
/// bytes binary data has.
fn is_text(head: &[u8]) -> bool {
    let valid = match std::str::from_utf8(head) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none() && head.len() - e.valid_up_to() < 4,
    };
    valid
        && !head
            .iter()
            .any(|&b| matches!(b, 0x00..=0x08 | 0x0b | 0x0e..=0x1a | 0x1c..=0x1f | 0x7f))
}

/// The content type of a file starting with `head` (its first [`SNIFF_LEN`] bytes, or all of a
/// shorter file).
pub(crate) fn sniff(head: &[u8]) -> &'static str {
    for (offset, magic, ctype) in MAGIC {
        if head.len() >= offset + magic.len() && &head[*offset..offset + magic.len()] == *magic {
            return ctype;
        }
    }
    let text = head.trim_ascii_start();
    if is_html(text) {
        return HTML;
    }
    if starts_with_ignore_case(text, b"<svg") {
        return "image/svg+xml";
    }
    if text.starts_with(b"<?xml") {
        let has_svg = text.windows(4).any(|w| w.eq_ignore_ascii_case(b"<svg"));
        return if has_svg { "image/svg+xml" } else { "text/xml" };
    }
    if is_text(head) { TEXT } else { BINARY }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_sorted_for_binary_search() {
        assert!(EXTENSIONS.windows(2).all(|w| w[0].0 < w[1].0));
    }

    #[test]
    fn extensions() {
        assert_eq!(from_extension("index.html"), Some(HTML));
        assert_eq!(from_extension("photo.JPG"), Some("image/jpeg"));
        assert_eq!(from_extension("a.b.tar"), Some("application/x-tar"));
        assert_eq!(from_extension("notes.txt"), Some(TEXT));
        assert_eq!(from_extension("x.svg"), Some("image/svg+xml"));
        assert_eq!(from_extension("README"), None);
        assert_eq!(from_extension(".bashrc"), None);
        assert_eq!(from_extension("archive.unknownext"), None);
        assert_eq!(from_extension("trailing."), None);
    }

    #[test]
    fn sniffing() {
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), "image/png");
        assert_eq!(sniff(b"\xff\xd8\xff\xe0\0\x10JFIF"), "image/jpeg");
        assert_eq!(sniff(b"GIF89a\x01\0"), "image/gif");
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 "), "image/webp");
        assert_eq!(sniff(b"%PDF-1.7\n"), "application/pdf");
        assert_eq!(sniff(b"\x1f\x8b\x08\0\0\0"), "application/gzip");
        assert_eq!(sniff(b"PK\x03\x04\x14\0"), "application/zip");
        assert_eq!(sniff(b"\0\0\0\x18ftypmp42"), "video/mp4");
        assert_eq!(sniff(b"<!DOCTYPE html>\n<html>"), HTML);
        assert_eq!(sniff(b"\n  <html lang=en>"), HTML);
        assert_eq!(sniff(b"<HTML>"), HTML);
        assert_eq!(sniff(b"<!-- comment -->"), HTML);
        assert_eq!(sniff(b"<html"), TEXT, "no terminator: not a tag");
        assert_eq!(sniff(b"<htmlx>"), TEXT);
        assert_eq!(
            sniff(b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>"),
            "image/svg+xml"
        );
        assert_eq!(sniff(b"<?xml version=\"1.0\"?><svg/>"), "image/svg+xml");
        assert_eq!(sniff(b"<?xml version=\"1.0\"?><feed/>"), "text/xml");
        assert_eq!(sniff(b"hello world\n"), TEXT);
        assert_eq!(sniff("h\u{e9}llo \u{1f600}\r\n\t".as_bytes()), TEXT);
        assert_eq!(sniff(b""), TEXT);
        // a multi-byte character cut by the sample's end is still text
        let mut cut = "ab\u{1f600}".as_bytes().to_vec();
        cut.truncate(4);
        assert_eq!(sniff(&cut), TEXT);
        assert_eq!(sniff(b"ab\xff\xfecd"), BINARY);
        assert_eq!(sniff(b"text\0with nul"), BINARY);
        assert_eq!(sniff(&[1, 2, 3, 4, 200, 100]), BINARY);
    }
}
