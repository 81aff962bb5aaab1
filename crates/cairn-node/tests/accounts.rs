//! `Accounts::process` (issue 20's `ssh/process`): a folder of a home becomes one `.tar.gz`
//! upload job holding the same tree, a file becomes a job of the same bytes, and `remove`
//! takes only the sources unchanged since they were packed.

use std::collections::BTreeMap;
use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use cairn_dag::{Cid, CidVersion};
use cairn_node::accounts::process::ProcessPath;
use cairn_node::jobs::{AfterJob, JobRecord, JobState, SubmitError};
use cairn_node::model::records::ObjectMeta;
use cairn_node::{ErrorKind, Node};

const KEY: &str =
    "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFNz8ojSUFVlIb96TSb7z/FgVsg2B8E/ewR1ROwqEgY0 erin";

async fn put(node: &Node, key: &str, data: Vec<u8>, mtime: Option<&str>) {
    let body = futures::stream::iter([Ok::<_, std::io::Error>(Bytes::from(data))]);
    let staged = node
        .objects()
        .stage(Some("erin"), body, CidVersion::V0)
        .await
        .unwrap();
    let mut meta = ObjectMeta::default();
    if let Some(t) = mtime {
        meta.user.insert("mtime".into(), t.into());
    }
    node.objects().commit(staged, "erin", key, meta).unwrap();
}

fn keys(node: &Node) -> Vec<String> {
    node.objects().keys("erin").unwrap()
}

async fn process(node: &Node, path: &str, remove: bool) -> Result<JobRecord, SubmitError> {
    process_as(node, "erin", path, remove, 1 << 30).await
}

async fn process_as(
    node: &Node,
    account: &str,
    path: &str,
    remove: bool,
    limit: u64,
) -> Result<JobRecord, SubmitError> {
    node.accounts()
        .process(ProcessPath {
            account: account.into(),
            path: path.into(),
            remove,
            version: CidVersion::V0,
            limit,
        })
        .await
}

async fn done(node: &Node, job: &JobRecord) -> Cid {
    let mut record = job.clone();
    for _ in 0..100 {
        record = node
            .jobs()
            .wait(&job.job_id, Duration::from_secs(10))
            .await
            .unwrap();
        if record.state != JobState::Active {
            break;
        }
    }
    assert_eq!(record.state, JobState::Done, "{record:?}");
    // The job's follow-up (removing the sources) runs once the job is recorded DONE.
    assert!(node.jobs().drain(Duration::from_secs(30)).await);
    Cid::try_from(record.cid.unwrap().as_str()).unwrap()
}

/// The archive's entries: name → (bytes, or `None` for a directory; mtime).
fn untar(node: &Node, cid: Cid) -> BTreeMap<String, (Option<Vec<u8>>, u64)> {
    let gz = flate2::read::GzDecoder::new(node.files().cat(cid, None));
    let mut archive = tar::Archive::new(gz);
    let mut entries = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().to_string_lossy().into_owned();
        let mtime = entry.header().mtime().unwrap();
        let body = if entry.header().entry_type().is_dir() {
            None
        } else {
            let mut bytes = Vec::new();
            entry.read_to_end(&mut bytes).unwrap();
            Some(bytes)
        };
        entries.insert(name, (body, mtime));
    }
    entries
}

#[tokio::test]
async fn a_folder_becomes_one_tar_gz_job_and_its_sources_leave_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path()).unwrap();
    node.accounts().add("erin", KEY, None, None).unwrap();
    put(&node, "docs/a.txt", b"alpha".to_vec(), Some("1000000000")).await;
    put(&node, "docs/sub/", Vec::new(), None).await;
    let long = format!("docs/sub/{}.bin", "n".repeat(120));
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    put(&node, &long, big.clone(), None).await;
    put(&node, "other.txt", b"stays".to_vec(), None).await;

    // Without remove: the tree, and the home unchanged.
    let job = process(&node, "/docs", false).await.unwrap();
    assert_eq!(job.ext.as_deref(), Some("tar.gz"));
    assert_eq!(job.owner.as_deref(), Some("erin"));
    let cid = done(&node, &job).await;
    let tree = untar(&node, cid);
    let names: Vec<&str> = tree.keys().map(String::as_str).collect();
    let long_name = long.strip_prefix("docs/").unwrap();
    assert_eq!(
        names,
        [
            "docs/a.txt",
            "docs/sub/",
            &format!("docs/{long_name}") as &str
        ]
    );
    assert_eq!(tree["docs/a.txt"], (Some(b"alpha".to_vec()), 1_000_000_000));
    assert!(tree[&format!("docs/{long_name}")].0.as_deref() == Some(&big[..]));
    assert_eq!(tree["docs/sub/"].0, None);
    assert_eq!(keys(&node).len(), 4);

    // A file is taken as it is: the same bytes, so the same CID as the object's.
    let file = process(&node, "docs/a.txt", false).await.unwrap();
    assert_eq!(file.ext.as_deref(), Some("txt"));
    let file_cid = done(&node, &file).await;
    assert_eq!(
        file_cid,
        node.objects().get("erin", "docs/a.txt").unwrap().cid
    );

    // With remove: the folder leaves once the job is DONE; the rest of the home stays.
    let job = process(&node, "docs", true).await.unwrap();
    let removed = done(&node, &job).await;
    assert_eq!(removed, cid, "the same tree packs to the same archive");
    assert_eq!(keys(&node), ["other.txt"]);

    // Nothing at the path, or no such account: refused, no job.
    let nothing = process(&node, "nothing-here", false).await.unwrap_err();
    assert!(
        matches!(&nothing, SubmitError::Node(e) if e.kind() == ErrorKind::NotFound),
        "{nothing}"
    );
    let stranger = process_as(&node, "nobody", "/", false, 1 << 30)
        .await
        .unwrap_err();
    assert!(
        matches!(&stranger, SubmitError::Node(e) if e.kind() == ErrorKind::NotFound),
        "{stranger}"
    );

    // An archive past the limit is refused before it is a job.
    let small = process_as(&node, "erin", "/", true, 10).await.unwrap_err();
    assert!(matches!(small, SubmitError::TooLarge { .. }), "{small}");
    assert_eq!(keys(&node), ["other.txt"], "a refused job removes nothing");
}

#[tokio::test]
async fn only_sources_unchanged_since_they_were_read_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path()).unwrap();
    node.accounts().add("erin", KEY, None, None).unwrap();
    put(&node, "a", b"one".to_vec(), None).await;
    put(&node, "b", b"two".to_vec(), None).await;
    let etag = |key: &str| node.objects().get("erin", key).unwrap().meta.etag;
    let read = vec![("a".to_owned(), etag("a")), ("b".to_owned(), etag("b"))];
    // b is written again after the read; c was never there.
    put(&node, "b", b"two, changed".to_vec(), None).await;
    let mut asked = read.clone();
    asked.push(("c".to_owned(), "00".to_owned()));
    let gone = node.objects().delete_unchanged("erin", &asked).unwrap();
    assert_eq!(gone, ["a"]);
    assert_eq!(keys(&node), ["b"]);
}

/// A job that ended before its follow-up ran (a restart between the two): `Jobs::resume` runs
/// it at the next start.
#[tokio::test]
async fn a_follow_up_cut_by_a_restart_runs_at_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let job = {
        let node = Node::open(dir.path()).unwrap();
        node.accounts().add("erin", KEY, None, None).unwrap();
        put(&node, "docs/a.txt", b"alpha".to_vec(), None).await;
        let job = process(&node, "docs", false).await.unwrap();
        done(&node, &job).await;
        // What `remove` would have recorded, still there when the node stopped.
        let etag = node.objects().get("erin", "docs/a.txt").unwrap().meta.etag;
        let after = AfterJob::RemoveSources {
            bucket: "erin".into(),
            objects: vec![("docs/a.txt".into(), etag)],
        };
        const JOB_AFTER: cairn_store::Table<AfterJob> = cairn_store::Table::new("job_after");
        node.store()
            .update(|txn| txn.put(JOB_AFTER, &job.job_id, &after))
            .unwrap();
        assert_eq!(keys(&node), ["docs/a.txt"]);
        job
    };
    let node = Node::open(dir.path()).unwrap();
    node.jobs().resume().unwrap();
    assert!(node.jobs().drain(Duration::from_secs(30)).await);
    assert!(keys(&node).is_empty(), "{:?}", keys(&node));
    assert_eq!(node.jobs().get(&job.job_id).unwrap().state, JobState::Done);
}

/// A bucket named as the account but not the account's (its home was deleted and someone
/// else made one of that name) is not processed, and nothing of it is removed.
#[tokio::test]
async fn only_the_accounts_own_home_is_processed() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path()).unwrap();
    node.accounts().add("erin", KEY, None, None).unwrap();
    node.buckets().delete("erin").unwrap();
    node.buckets().create("erin", "bob").unwrap();
    put(&node, "bobs.txt", b"bob's".to_vec(), None).await;
    for remove in [false, true] {
        let refused = process(&node, "/", remove).await.unwrap_err();
        assert!(
            matches!(&refused, SubmitError::Node(e) if e.kind() == ErrorKind::Forbidden),
            "{refused}"
        );
    }
    assert_eq!(keys(&node), ["bobs.txt"]);
}

/// Keys S3 may write that are not plain paths refuse the archive whole (nothing packed under
/// another name, nothing removed).
#[tokio::test]
async fn a_key_that_is_not_a_plain_path_refuses_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path()).unwrap();
    node.accounts().add("erin", KEY, None, None).unwrap();
    put(&node, "docs/a.txt", b"a".to_vec(), None).await;
    put(&node, "docs//twice", b"b".to_vec(), None).await;
    let refused = process(&node, "docs", true).await.unwrap_err();
    assert!(
        matches!(&refused, SubmitError::Node(e) if e.kind() == ErrorKind::Invalid),
        "{refused}"
    );
    assert_eq!(keys(&node).len(), 2);
}
