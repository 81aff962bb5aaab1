//! The IPFS HTTP gateway of `cairn serve` over real HTTP: byte-exact files and ranges,
//! directories (redirect, `index.html`, listings, HAMT shards), raw blocks and CARs verified
//! block by block (and by an independent JavaScript reader, `tests/js/verify-car.mjs`),
//! errors, HEAD and the publication policy.

mod common;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use aws_sdk_s3::primitives::ByteStream;
use cairn_dag::Cid;
use cairn_dag::dir::{NodeKind, describe};
use cairn_dag::read::FileRead;
use common::{Server, added_root, cairn, cairn_add_cid, ok, pattern};
use sha2::{Digest, Sha256};

/// One HTTP/1.1 response.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The body arrived whole (chunked: the last chunk came; otherwise Content-Length bytes).
    complete: bool,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// The body of a chunked response, and whether its last chunk came.
fn dechunk(mut b: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = b.windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let size = std::str::from_utf8(&b[..eol]).unwrap_or("x");
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            return (out, false);
        };
        if n == 0 {
            return (out, true);
        }
        let Some(chunk) = b.get(eol + 2..eol + 2 + n) else {
            out.extend_from_slice(&b[(eol + 2).min(b.len())..]);
            return (out, false);
        };
        out.extend_from_slice(chunk);
        b = b.get(eol + 4 + n..).unwrap_or_default();
    }
}

/// A request to the gateway with extra headers; the connection is closed after the response.
fn request(server: &Server, method: &str, path: &str, headers: &[(&str, &str)]) -> Resp {
    let mut s = std::net::TcpStream::connect(&server.gateway).unwrap();
    let mut head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n",
        server.gateway
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut raw = Vec::new();
    // a cut connection (a body that failed mid-stream) may end in a reset: keep what came
    let _ = s.read_to_end(&mut raw);
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head: {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect();
    let mut resp = Resp {
        status,
        headers,
        body: raw[head_end + 4..].to_vec(),
        complete: true,
    };
    if resp
        .header("transfer-encoding")
        .is_some_and(|t| t.contains("chunked"))
    {
        (resp.body, resp.complete) = dechunk(&resp.body);
    } else if method != "HEAD"
        && let Some(len) = resp.header("content-length")
    {
        resp.complete = resp.body.len() == len.parse::<usize>().unwrap();
    }
    resp
}

fn get(server: &Server, path: &str) -> Resp {
    request(server, "GET", path, &[])
}

/// `cairn add -q` through the running node.
fn add(server: &Server, file: &Path, extra: &[&str]) -> String {
    let mut args = vec!["add", "-q"];
    args.extend(extra);
    args.push(file.to_str().unwrap());
    ok(&cairn(server.data.path(), &args)).trim().to_owned()
}

/// `cairn add -r` through the running node; the root CID.
fn add_tree(server: &Server, dir: &Path, extra: &[&str]) -> String {
    let mut args = vec!["add", "-r"];
    args.extend(extra);
    args.push(dir.to_str().unwrap());
    added_root(&ok(&cairn(server.data.path(), &args)))
}

fn sha256_hex(data: &[u8]) -> String {
    Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A parsed CAR: header roots and blocks in order, each verified against its CID.
struct Car {
    roots: Vec<Cid>,
    blocks: Vec<(Cid, Vec<u8>)>,
}

impl Car {
    fn parse(bytes: &[u8]) -> Car {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(async {
                let mut reader = iroh_car::CarReader::new(bytes).await.unwrap();
                let roots = reader.header().roots().to_vec();
                assert_eq!(reader.header().version(), 1);
                let mut blocks = Vec::new();
                while let Some((cid, data)) = reader.next_block().await.unwrap() {
                    cairn_dag::verify(&cid, &data)
                        .unwrap_or_else(|e| panic!("block {cid} does not match: {e}"));
                    blocks.push((cid, data));
                }
                Car { roots, blocks }
            })
    }

    fn cids(&self) -> Vec<Cid> {
        self.blocks.iter().map(|(c, _)| *c).collect()
    }

    /// Reads `range` of the file rooted at `file` from the CAR's blocks alone.
    fn read_file(&self, file: Cid, range: Option<std::ops::Range<u64>>) -> Vec<u8> {
        let map: HashMap<Cid, &[u8]> = self.blocks.iter().map(|(c, d)| (*c, &d[..])).collect();
        let mut read = FileRead::new(file, range);
        let mut out = Vec::new();
        while let Some(cid) = read.next_cid() {
            let block = map
                .get(&cid)
                .unwrap_or_else(|| panic!("the CAR lacks block {cid}"));
            out.extend_from_slice(read.feed(block).unwrap());
        }
        out
    }
}

fn car(server: &Server, path: &str) -> (Resp, Car) {
    let resp = get(server, path);
    assert_eq!(resp.status, 200, "{path}: {}", resp.text());
    assert!(resp.complete, "{path}: cut CAR");
    let car = Car::parse(&resp.body);
    (resp, car)
}

const IMMUTABLE: &str = "public, max-age=29030400, immutable";

#[test]
fn files_are_byte_exact_with_ranges_and_heads() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = pattern(1_500_000, 7); // 6 leaves
    let file = tmp.path().join("blob.bin");
    std::fs::write(&file, &data).unwrap();
    let v0 = add(&server, &file, &[]);
    assert_eq!(v0, cairn_add_cid(&file));
    assert!(v0.starts_with("Qm"));
    let v1 = add(&server, &file, &["--cid-version", "1"]);
    assert!(v1.starts_with("bafybei"), "{v1}");

    for cid in [&v0, &v1] {
        let path = format!("/ipfs/{cid}");
        let r = get(&server, &path);
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.body == data, "{cid}: bytes differ");
        assert_eq!(r.header("etag"), Some(format!("\"{cid}\"").as_str()));
        assert_eq!(r.header("cache-control"), Some(IMMUTABLE));
        assert_eq!(r.header("x-ipfs-path"), Some(path.as_str()));
        assert_eq!(r.header("x-ipfs-roots"), Some(cid.as_str()));
        assert_eq!(r.header("accept-ranges"), Some("bytes"));
        assert_eq!(r.header("content-length"), Some("1500000"));
        assert_eq!(r.header("content-type"), Some("application/octet-stream"));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));

        // HEAD: the same headers, no body
        let h = request(&server, "HEAD", &path, &[]);
        assert_eq!(h.status, 200);
        assert!(h.body.is_empty());
        for name in [
            "etag",
            "content-length",
            "content-type",
            "x-ipfs-path",
            "accept-ranges",
        ] {
            assert_eq!(h.header(name), r.header(name), "{name}");
        }

        // single ranges, across leaf boundaries too
        for (range, start, end) in [
            ("bytes=0-0", 0, 1),
            ("bytes=262100-786500", 262_100, 786_501),
            ("bytes=262144-524287", 262_144, 524_288),
            ("bytes=1499990-", 1_499_990, 1_500_000),
            ("bytes=-100", 1_499_900, 1_500_000),
            ("bytes=1000-99999999", 1000, 1_500_000),
        ] {
            let r = request(&server, "GET", &path, &[("Range", range)]);
            assert_eq!(r.status, 206, "{range}");
            assert!(r.body == data[start..end], "{range}: bytes differ");
            assert_eq!(
                r.header("content-range"),
                Some(format!("bytes {start}-{}/1500000", end - 1).as_str()),
                "{range}"
            );
            assert_eq!(
                r.header("content-length"),
                Some((end - start).to_string().as_str())
            );
        }
        let r = request(&server, "GET", &path, &[("Range", "bytes=1500000-")]);
        assert_eq!(r.status, 416);
        assert_eq!(r.header("content-range"), Some("bytes */1500000"));
        // several ranges: the whole file
        let r = request(&server, "GET", &path, &[("Range", "bytes=0-1,5-6")]);
        assert_eq!(r.status, 200);
        assert!(r.body == data);
        // conditional
        let etag = format!("\"{cid}\"");
        let r = request(&server, "GET", &path, &[("If-None-Match", &etag)]);
        assert_eq!(r.status, 304);
        assert!(r.body.is_empty());
    }

    // content types: the extension, else sniffed
    let page = tmp.path().join("page");
    std::fs::write(&page, b"<!DOCTYPE html><html><body>hi</body></html>").unwrap();
    let page = add(&server, &page, &[]);
    let r = get(&server, &format!("/ipfs/{page}"));
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let r = get(&server, &format!("/ipfs/{page}?filename=x.txt"));
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(
        r.header("content-disposition"),
        Some("inline; filename=\"x.txt\"")
    );
    let r = get(
        &server,
        &format!("/ipfs/{page}?filename=x.txt&download=true"),
    );
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"x.txt\"")
    );
    // an empty file
    let empty = tmp.path().join("empty");
    std::fs::write(&empty, b"").unwrap();
    let empty = add(&server, &empty, &[]);
    let r = get(&server, &format!("/ipfs/{empty}"));
    assert_eq!((r.status, r.body.len()), (200, 0));
    assert_eq!(r.header("content-length"), Some("0"));
    let r = request(
        &server,
        "GET",
        &format!("/ipfs/{empty}"),
        &[("Range", "bytes=0-")],
    );
    assert_eq!(r.status, 416);
}

/// `site/` with `index.html`, `files/` without, a nested folder.
fn site(dir: &Path) -> PathBuf {
    let site = dir.join("site");
    std::fs::create_dir_all(site.join("files/nested")).unwrap();
    std::fs::write(site.join("index.html"), b"<html><body>home</body></html>").unwrap();
    std::fs::write(site.join("files/a b.txt"), b"spaced\n").unwrap();
    std::fs::write(site.join("files/<tag>&'q'.md"), b"# odd\n").unwrap();
    std::fs::write(site.join("files/big.bin"), pattern(700_000, 2)).unwrap();
    std::fs::write(site.join("files/nested/deep.json"), b"{}").unwrap();
    site
}

#[test]
fn directories_redirect_index_and_list() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let root = add_tree(&server, &site(tmp.path()), &[]);

    // no trailing slash: 301 to the slash, query kept
    let r = get(&server, &format!("/ipfs/{root}?a=1&b=2"));
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some(format!("/ipfs/{root}/?a=1&b=2").as_str())
    );
    let r = get(&server, &format!("/ipfs/{root}/files"));
    assert_eq!(r.status, 301);
    assert_eq!(
        r.header("location"),
        Some(format!("/ipfs/{root}/files/").as_str())
    );

    // index.html is served for its directory
    let r = get(&server, &format!("/ipfs/{root}/"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"<html><body>home</body></html>");
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let index = ok(&cairn(server.data.path(), &["ls", &root]));
    let index_cid = index
        .lines()
        .find(|l| l.ends_with(" index.html"))
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert_eq!(r.header("etag"), Some(format!("\"{index_cid}\"").as_str()));

    // a listing: escaped names, links, sizes, CIDs
    let path = format!("/ipfs/{root}/files/");
    let r = get(&server, &path);
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let etag = r.header("etag").unwrap().to_owned();
    assert!(
        etag.starts_with("\"DirIndex-") && etag.contains("_CID-"),
        "{etag}"
    );
    let html = r.text();
    let ls = ok(&cairn(
        server.data.path(),
        &["ls", &format!("{root}/files")],
    ));
    for line in ls.lines() {
        let cid = line.split(' ').next().unwrap();
        assert!(html.contains(&format!("href=\"/ipfs/{cid}\"")), "{cid}");
    }
    assert!(html.contains("href=\"./a%20b.txt\">a b.txt</a>"), "{html}");
    assert!(html.contains("&lt;tag&gt;&amp;&#39;q&#39;.md"), "{html}");
    assert!(!html.contains("<tag>"));
    assert!(html.contains("href=\"./nested/\">nested/</a>"));
    assert!(html.contains("title=\"700000 bytes\""));
    assert!(html.contains("href=\"../\""));
    let h = request(&server, "HEAD", &path, &[]);
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    assert_eq!(h.header("content-length"), r.header("content-length"));

    // files below, by decoded names; X-Ipfs-Roots names every segment
    let r = get(&server, &format!("/ipfs/{root}/files/a%20b.txt"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"spaced\n");
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    assert_eq!(r.header("x-ipfs-roots").unwrap().split(',').count(), 3);
    let r = get(&server, &format!("/ipfs/{root}/files/%3Ctag%3E%26'q'.md"));
    assert_eq!((r.status, &r.body[..]), (200, &b"# odd\n"[..]));
    assert_eq!(
        r.header("content-type"),
        Some("text/markdown; charset=utf-8")
    );
    let r = get(&server, &format!("/ipfs/{root}/files/nested/deep.json"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    let r = get(&server, &format!("/ipfs/{root}/files/big.bin"));
    assert!(r.body == pattern(700_000, 2));

    // missing names and paths through a file are 404
    for missing in [
        "nope",
        "files/nope.txt",
        "files/a%20b.txt/x",
        "index.html/x",
    ] {
        let r = get(&server, &format!("/ipfs/{root}/{missing}"));
        assert_eq!(r.status, 404, "{missing}: {}", r.text());
        assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    }
}

#[test]
fn hamt_directories_resolve_list_and_export_their_shards() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let big = tmp.path().join("big");
    std::fs::create_dir(&big).unwrap();
    for i in 0..4000 {
        let name = format!("a-file-with-a-rather-long-name-to-make-the-directory-shard-{i:05}.txt");
        std::fs::write(big.join(name), format!("file {i}\n")).unwrap();
    }
    let root = add_tree(&server, &big, &["--cid-version", "1"]);

    let name = "a-file-with-a-rather-long-name-to-make-the-directory-shard-03217.txt";
    let r = get(&server, &format!("/ipfs/{root}/{name}"));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.body, b"file 3217\n");
    assert_eq!(r.header("x-ipfs-roots").unwrap().split(',').count(), 2);
    assert_eq!(get(&server, &format!("/ipfs/{root}/{name}x")).status, 404);

    let r = get(&server, &format!("/ipfs/{root}/"));
    assert_eq!(r.status, 200);
    assert_eq!(r.text().matches("<tr><td><a href=\"./").count(), 4000);

    // entity: the HAMT root and its shards, none of the files
    let (_, entity) = car(
        &server,
        &format!("/ipfs/{root}?format=car&dag-scope=entity"),
    );
    assert_eq!(entity.blocks[0].0.to_string(), root);
    assert!(entity.blocks.len() > 2, "{}", entity.blocks.len());
    for (cid, data) in &entity.blocks {
        assert_eq!(
            describe(cid, data),
            NodeKind::Directory { sharded: true },
            "{cid}"
        );
    }
    // all: every block, 4000 files among them
    let (_, all) = car(&server, &format!("/ipfs/{root}?format=car"));
    assert_eq!(all.blocks.len(), entity.blocks.len() + 4000);
    // a path through the shards: only the shards on the way, then the file
    let (_, path) = car(
        &server,
        &format!("/ipfs/{root}/{name}?format=car&dag-scope=block"),
    );
    assert!(path.blocks.len() >= 3 && path.blocks.len() < entity.blocks.len());
    assert_eq!(path.blocks.last().unwrap().1, b"file 3217\n");
}

#[test]
fn raw_blocks_and_cars_verify() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = pattern(1_300_000, 11); // 5 leaves
    let site = site(tmp.path());
    std::fs::write(site.join("files/blob.bin"), &data).unwrap();
    let dir = add_tree(&server, &site, &[]);
    let file = tmp.path().join("blob.bin");
    std::fs::write(&file, &data).unwrap();

    for version in ["0", "1"] {
        let cid = add(&server, &file, &["--cid-version", version]);
        let root: Cid = cid.parse().unwrap();

        // raw: the root block's exact bytes
        let r = get(&server, &format!("/ipfs/{cid}?format=raw"));
        assert_eq!(r.status, 200);
        cairn_dag::verify(&root, &r.body).unwrap();
        assert_eq!(r.header("content-type"), Some("application/vnd.ipld.raw"));
        assert_eq!(
            r.header("content-disposition"),
            Some(format!("attachment; filename=\"{cid}.bin\"").as_str())
        );
        assert_eq!(r.header("etag"), Some(format!("\"{cid}.raw\"").as_str()));
        assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(r.header("content-location"), None);
        let a = request(
            &server,
            "GET",
            &format!("/ipfs/{cid}"),
            &[("Accept", "application/vnd.ipld.raw")],
        );
        assert_eq!(a.body, r.body);
        assert_eq!(
            a.header("content-location"),
            Some(format!("/ipfs/{cid}?format=raw").as_str())
        );
        // every leaf of the file by its own CID
        let links = cairn_dag::links_of(&root, &r.body.clone().into()).unwrap();
        assert_eq!(links.len(), 5);
        for leaf in &links {
            // leaves are not published on their own
            assert_eq!(
                get(&server, &format!("/ipfs/{leaf}?format=raw")).status,
                404
            );
        }

        // the whole DAG: root first, every block once, the file re-assembles
        let (resp, all) = car(&server, &format!("/ipfs/{cid}?format=car"));
        assert_eq!(
            resp.header("content-type"),
            Some("application/vnd.ipld.car; version=1; order=dfs; dups=n")
        );
        assert_eq!(
            resp.header("content-disposition"),
            Some(format!("attachment; filename=\"{cid}.car\"").as_str())
        );
        assert_eq!(resp.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(all.roots, [root]);
        assert_eq!(all.blocks[0].0, root);
        assert_eq!(all.blocks.len(), 6);
        assert!(all.read_file(root, None) == data);
        let etag_all = resp.header("etag").unwrap().to_owned();

        // the same through Accept
        let a = request(
            &server,
            "GET",
            &format!("/ipfs/{cid}"),
            &[("Accept", "application/vnd.ipld.car; version=1")],
        );
        assert_eq!(a.body, resp.body);
        assert_eq!(
            a.header("content-location"),
            Some(format!("/ipfs/{cid}?format=car").as_str())
        );

        // block: just the root; entity: the whole file
        let (resp, block) = car(&server, &format!("/ipfs/{cid}?format=car&dag-scope=block"));
        assert_eq!(block.cids(), [root]);
        let etag_block = resp.header("etag").unwrap().to_owned();
        let (resp, entity) = car(&server, &format!("/ipfs/{cid}?format=car&dag-scope=entity"));
        assert_eq!(entity.cids(), all.cids());
        let etag_entity = resp.header("etag").unwrap().to_owned();

        // entity-bytes: only the leaves holding the range
        let (resp, part) = car(
            &server,
            &format!("/ipfs/{cid}?format=car&entity-bytes=300000:600000"),
        );
        assert_eq!(part.cids(), [root, links[1], links[2]]);
        assert!(part.read_file(root, Some(300_000..600_001)) == data[300_000..600_001]);
        let etag_bytes = resp.header("etag").unwrap().to_owned();
        let (_, tail) = car(
            &server,
            &format!("/ipfs/{cid}?format=car&entity-bytes=-10:*"),
        );
        assert_eq!(tail.cids(), [root, links[4]]);
        assert!(tail.read_file(root, Some(1_299_990..1_300_000)) == data[1_299_990..]);
        let (_, head) = car(
            &server,
            &format!("/ipfs/{cid}?format=car&dag-scope=entity&entity-bytes=0:0"),
        );
        assert_eq!(head.cids(), [root, links[0]]);
        // starting past the end: 400
        let r = get(
            &server,
            &format!("/ipfs/{cid}?format=car&entity-bytes=1300000:*"),
        );
        assert_eq!(r.status, 400, "{}", r.text());

        let etags = [&etag_all, &etag_block, &etag_entity, &etag_bytes];
        let distinct: std::collections::HashSet<_> = etags.iter().collect();
        assert_eq!(distinct.len(), 4, "{etags:?}");

        // HEAD of a CAR: headers, no body
        let h = request(&server, "HEAD", &format!("/ipfs/{cid}?format=car"), &[]);
        assert_eq!(h.status, 200);
        assert!(h.body.is_empty());
        assert_eq!(h.header("etag"), Some(etag_all.as_str()));
    }

    // a CAR of a path: header root is the URL's CID, the path's blocks come first
    let dir_cid: Cid = dir.parse().unwrap();
    let (_, path) = car(&server, &format!("/ipfs/{dir}/files/blob.bin?format=car"));
    assert_eq!(path.roots, [dir_cid]);
    assert_eq!(path.blocks[0].0, dir_cid);
    let file_cid: Cid = add(&server, &file, &[]).parse().unwrap();
    assert_eq!(path.blocks[2].0, file_cid);
    assert_eq!(path.blocks.len(), 2 + 6);
    assert!(path.read_file(file_cid, None) == data);
    // raw of a path: the terminal block
    let r = get(&server, &format!("/ipfs/{dir}/files/blob.bin?format=raw"));
    cairn_dag::verify(&file_cid, &r.body).unwrap();
    assert_eq!(
        r.header("etag"),
        Some(format!("\"{file_cid}.raw\"").as_str())
    );
    // a directory's entity is its one block (no shards), all is everything below
    let (_, entity) = car(
        &server,
        &format!("/ipfs/{dir}/files?format=car&dag-scope=entity"),
    );
    assert_eq!(entity.blocks.len(), 2);
    let (_, files) = car(&server, &format!("/ipfs/{dir}/files/?format=car"));
    assert!(files.blocks.len() > 10);

    // the trustless probe: the empty identity CID
    let r = get(&server, "/ipfs/bafkqaaa?format=raw");
    assert_eq!((r.status, r.body.len()), (200, 0));
    let (_, probe) = car(&server, "/ipfs/bafkqaaa?format=car");
    assert_eq!(probe.roots, ["bafkqaaa".parse::<Cid>().unwrap()]);
    assert!(probe.blocks.is_empty());

    // CAR variants this gateway does not write
    let r = request(
        &server,
        "GET",
        &format!("/ipfs/{dir}"),
        &[("Accept", "application/vnd.ipld.car; dups=y")],
    );
    assert_eq!(r.status, 406);
    assert_eq!(
        get(&server, &format!("/ipfs/{dir}?format=car&car-order=foo")).status,
        400
    );
}

#[tokio::test]
async fn errors_and_publication_policy() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("f.txt");
    std::fs::write(&file, b"hello gateway\n").unwrap();
    let cid = add(&server, &file, &[]);
    assert_eq!(get(&server, &format!("/ipfs/{cid}")).status, 200);

    let status = |path: &str| get(&server, path).status;
    assert_eq!(status("/ipfs/not-a-cid"), 400);
    assert_eq!(status("/ipfs/Qm"), 400);
    assert_eq!(status("/ipfs/"), 400);
    assert_eq!(status("/"), 404);
    assert_eq!(status("/favicon.ico"), 404);
    assert_eq!(status("/ipns/example.com"), 501);
    assert_eq!(status(&format!("/ipfs/{cid}/..")), 400);
    assert_eq!(status(&format!("/ipfs/{cid}/%FF")), 400);
    assert_eq!(status(&format!("/ipfs/{cid}?format=tar")), 400);
    assert_eq!(
        status(&format!("/ipfs/{cid}?format=car&dag-scope=everything")),
        400
    );
    assert_eq!(
        status(&format!("/ipfs/{cid}?format=car&entity-bytes=9:1")),
        400
    );
    assert_eq!(
        status(&format!("/ipfs/{cid}?format=car&entity-bytes=x")),
        400
    );
    assert_eq!(
        status(&format!(
            "/ipfs/{cid}?format=car&dag-scope=block&entity-bytes=0:1"
        )),
        400
    );
    // a path through a file
    assert_eq!(status(&format!("/ipfs/{cid}/x")), 404);
    // a valid CID nobody stored
    let unknown = "bafkreie7q3iidccmpvszul7kudcvvuavuo7u6gzlbobczuk5nqk3b4akba";
    let r = get(&server, &format!("/ipfs/{unknown}"));
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), format!("{unknown}: not found\n"));
    let r = request(&server, "POST", &format!("/ipfs/{cid}"), &[]);
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    assert_eq!(request(&server, "PUT", "/ipfs/x", &[]).status, 405);
    let h = request(&server, "HEAD", &format!("/ipfs/{unknown}"), &[]);
    assert_eq!((h.status, h.body.len()), (404, 0));

    // stored but not published: answered exactly like an unknown CID
    let unpinned_file = tmp.path().join("unpinned.txt");
    std::fs::write(&unpinned_file, b"not pinned\n").unwrap();
    let unpinned = add(&server, &unpinned_file, &["--pin=false"]);
    let s3 = server.client();
    s3.create_bucket().bucket("private").send().await.unwrap();
    s3.put_object()
        .bucket("private")
        .key("secret.txt")
        .body(ByteStream::from_static(b"private bytes\n"))
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket("private")
        .key("secret.txt")
        .send()
        .await
        .unwrap();
    let private = head.metadata().unwrap()["cid"].clone();
    for hidden in [&unpinned, &private] {
        for suffix in ["", "?format=raw", "?format=car"] {
            let r = get(&server, &format!("/ipfs/{hidden}{suffix}"));
            assert_eq!(r.status, 404, "{hidden}{suffix}");
            assert_eq!(r.text(), format!("{hidden}: not found\n"));
        }
    }
    // an identity CID embedding a directory that links to the private object: still hidden
    let mut builder = cairn_dag::dir::DirectoryBuilder::new(cairn_dag::CidVersion::V1);
    builder
        .add_link("d/s", private.parse().unwrap(), 14)
        .unwrap();
    let dir = builder.build().unwrap().pop().unwrap().block.data;
    assert!(dir.len() < 64);
    let mut bytes = vec![0x01, 0x70, 0x00, dir.len() as u8];
    bytes.extend_from_slice(&dir);
    let identity = Cid::try_from(bytes).unwrap();
    for suffix in ["/s", "/s?format=raw", "?format=car", "/"] {
        let r = get(&server, &format!("/ipfs/{identity}{suffix}"));
        assert_eq!(r.status, 404, "{suffix}: {}", r.text());
    }
    drop(server);

    // `gateway_policy = "all"` serves every stored CID
    let data = tempfile::tempdir().unwrap();
    std::fs::write(data.path().join("cairn.toml"), "gateway_policy = \"all\"\n").unwrap();
    let server = Server::start_in(data);
    let unpinned = add(&server, &unpinned_file, &["--pin=false"]);
    let r = get(&server, &format!("/ipfs/{unpinned}"));
    assert_eq!((r.status, &r.body[..]), (200, &b"not pinned\n"[..]));
}

#[tokio::test]
async fn public_bucket_objects_are_served_with_their_content_type() {
    let server = Server::start();
    let s3 = server.client();
    s3.create_bucket().bucket("pub").send().await.unwrap();
    s3.put_object()
        .bucket("pub")
        .key("page")
        .content_type("text/x-cairn-test")
        .body(ByteStream::from_static(b"<html>not sniffed</html>"))
        .send()
        .await
        .unwrap();
    let head = s3
        .head_object()
        .bucket("pub")
        .key("page")
        .send()
        .await
        .unwrap();
    let cid = head.metadata().unwrap()["cid"].clone();
    assert_eq!(get(&server, &format!("/ipfs/{cid}")).status, 404);
    ok(&cairn(server.data.path(), &["bucket", "set-public", "pub"]));
    let r = get(&server, &format!("/ipfs/{cid}"));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, b"<html>not sniffed</html>");
    assert_eq!(r.header("content-type"), Some("text/x-cairn-test"));
}

#[test]
fn a_corrupt_block_never_gives_wrong_bytes() {
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = pattern(1_000_000, 5);
    let file = tmp.path().join("victim.bin");
    std::fs::write(&file, &data).unwrap();
    let cid = add(&server, &file, &["--cid-version", "1"]);
    let root: Cid = cid.parse().unwrap();
    let raw = get(&server, &format!("/ipfs/{cid}?format=raw"));
    let leaf = cairn_dag::links_of(&root, &raw.body.into()).unwrap()[2];
    // flip a byte of the third leaf's file
    let victim = common::block_files(server.data.path())
        .into_iter()
        .find(|p| {
            std::fs::read(p)
                .ok()
                .is_some_and(|d| cairn_dag::verify(&leaf, &d).is_ok())
        })
        .expect("the leaf's block file");
    let mut bytes = std::fs::read(&victim).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&victim, bytes).unwrap();

    let r = get(&server, &format!("/ipfs/{cid}"));
    assert!(r.status >= 500 || !r.complete, "status {}", r.status);
    assert!(r.body != data && r.body.len() < data.len());
    assert!(data.starts_with(&r.body), "only good bytes before the cut");
    // the block is quarantined now: gone, not wrong
    let r = get(&server, &format!("/ipfs/{cid}?format=car"));
    assert!(!r.complete || r.status >= 400, "status {}", r.status);
}

/// The independent reader: `tests/js/verify-car.mjs` (`@ipld/car` + `ipfs-unixfs-exporter`
/// from npm) parses the gateway's CAR, checks every block and re-assembles the file.
#[test]
fn cars_verify_with_the_javascript_ipfs_stack() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/js");
    if Command::new("npm").arg("--version").output().is_err() {
        eprintln!(
            "\n\n!!!! SKIPPED cars_verify_with_the_javascript_ipfs_stack: npm is not installed \
             (.ci/run installs it) !!!!\n"
        );
        return;
    }
    if !dir.join("node_modules/@ipld/car").is_dir() {
        let out = Command::new("npm")
            .args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "npm ci: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let server = Server::start();
    let tmp = tempfile::tempdir().unwrap();
    let data = pattern(2_000_000, 13);
    let file = tmp.path().join("js.bin");
    std::fs::write(&file, &data).unwrap();
    let tree = site(tmp.path());
    std::fs::write(tree.join("files/js.bin"), &data).unwrap();
    let dir_cid = add_tree(&server, &tree, &["--cid-version", "1"]);
    let sha = sha256_hex(&data);
    for (name, path, root) in [
        ("v0", None, add(&server, &file, &[])),
        ("v1", None, add(&server, &file, &["--cid-version", "1"])),
        ("path", Some("files/js.bin"), dir_cid.clone()),
    ] {
        let url = match path {
            Some(p) => format!("/ipfs/{root}/{p}?format=car"),
            None => format!("/ipfs/{root}?format=car"),
        };
        let (resp, _) = car(&server, &url);
        let car_file = tmp.path().join(format!("{name}.car"));
        std::fs::write(&car_file, &resp.body).unwrap();
        let mut cmd = Command::new("node");
        cmd.arg(dir.join("verify-car.mjs"))
            .arg(&car_file)
            .arg(&root)
            .arg(&sha);
        if let Some(p) = path {
            cmd.arg(p);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{name}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        // and a CAR with a flipped byte is refused
        let mut bad = resp.body.clone();
        let at = bad.len() - 1000;
        bad[at] ^= 1;
        std::fs::write(&car_file, &bad).unwrap();
        let mut cmd = Command::new("node");
        cmd.arg(dir.join("verify-car.mjs"))
            .arg(&car_file)
            .arg(&root)
            .arg(&sha);
        if let Some(p) = path {
            cmd.arg(p);
        }
        assert!(
            !cmd.output().unwrap().status.success(),
            "{name}: bad CAR accepted"
        );
    }
}
