//! The command line, as clap definitions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Cairn: a content-addressed object store. Every file is a UnixFS DAG whose CID equals what
/// `ipfs add` gives the same bytes.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about)]
pub struct Cli {
    /// Data folder (blocks, metadata).
    #[arg(
        long,
        global = true,
        env = "CAIRN_DATA",
        default_value = "./cairn-data"
    )]
    pub data: PathBuf,

    /// Talk to the node at this URL (its gateway listener, e.g. `http://host:8080`) instead of
    /// the one on the data folder. Default from `CAIRN_NODE` or `node` in the CLI config
    /// (`$XDG_CONFIG_HOME/cairn/cli.toml`).
    #[arg(long, global = true, env = "CAIRN_NODE")]
    pub node: Option<String>,

    /// With `--node`: the node's API secret, or a login token.
    #[arg(long, global = true, env = "CAIRN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,

    /// With an `https://` `--node`: trust this PEM certificate (a self-signed node, a private
    /// CA) instead of the public web roots.
    #[arg(long, global = true, env = "CAIRN_CA_CERT")]
    pub ca_cert: Option<PathBuf>,

    /// With `--node`: log in with this user key file (`cairn user create`) instead of a token.
    #[arg(long, global = true, env = "CAIRN_IDENTITY")]
    pub identity: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a node: the S3 API on 127.0.0.1:8000 by default.
    Serve(ServeArgs),
    /// User keypairs (ed25519 to sign logins, X25519 to receive keys).
    #[command(subcommand)]
    User(UserCmd),
    /// Log in to a node in allowlist mode (`--node`, `--identity`) and print the token.
    Login,
    /// Share an encrypted object with a user: its data key is sealed for their public key, so
    /// they read it through their own node (which mirrors the bucket) without a re-upload.
    /// Later versions stay shared until `--revoke`, which re-keys the object.
    Share {
        /// `BUCKET/KEY`.
        target: String,
        /// The user's public key (`cpk1…`, from `cairn user create`).
        #[arg(long)]
        to: String,
        /// How long the share lasts (`7d`, `12h`, `30m`); default: until revoked.
        #[arg(long)]
        expires: Option<String>,
        /// Revoke the share and re-key the object.
        #[arg(long)]
        revoke: bool,
    },
    /// Add files or directory trees; prints CIDs like `ipfs add`. Reads stdin for `-` or no path.
    Add(AddArgs),
    /// Print a file (or a byte range of it).
    Cat(CatArgs),
    /// Write a file or directory tree to the local filesystem.
    Get(GetArgs),
    /// List a directory.
    Ls(PathArg),
    /// Back up a directory tree to the running node as a named snapshot, with modes and
    /// mtimes; incremental: files unchanged since the last backup of the same directory are
    /// neither read nor sent. Prints the counts and the root CID.
    Backup {
        /// The directory.
        dir: PathBuf,
        /// Snapshot name (default: the directory's name).
        #[arg(long)]
        name: Option<String>,
        /// CID version: 0 (dag-pb leaves, Kubo's default) or 1 (raw leaves).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
        cid_version: u8,
    },
    /// Restore a snapshot (the newest of that name) or a CID into a new or empty directory,
    /// with modes, mtimes and symlinks.
    Restore {
        /// A snapshot name, or `CID[/path]`.
        what: String,
        /// Where to restore (created if missing; must be empty).
        dir: PathBuf,
    },
    /// List or forget the named snapshots `cairn backup` keeps.
    #[command(subcommand)]
    Snapshot(SnapshotCmd),
    /// Export or import CARv1 files.
    #[command(subcommand)]
    Car(CarCmd),
    /// Manage pins (roots kept by garbage collection).
    #[command(subcommand)]
    Pin(PinCmd),
    /// Remove every block no pinned root reaches.
    Gc,
    /// Re-read and re-hash every block file now (the scrub job does it slowly in the
    /// background); failing blocks are quarantined (in a cluster, repair re-creates them).
    Scrub,
    /// Load-test any S3 endpoint: large and 4 KiB objects, listing, multipart; prints a table.
    Bench(BenchArgs),
    /// Manage users' S3 access keys.
    #[command(subcommand)]
    Key(KeyCmd),
    /// Manage buckets.
    #[command(subcommand)]
    Bucket(BucketCmd),
    /// Manage SFTP accounts (`serve --sftp-listen`): each account's home folder is a bucket
    /// of its name that it owns.
    #[command(subcommand)]
    Sftp(SftpCmd),
    /// Check a DAG: soft (every block present) or --hard (every block re-hashed, files
    /// re-assembled).
    Check(CheckArgs),
    /// Print this node's peer id and (while it runs) its addresses.
    Id {
        /// Print `{"peer_id": ..., "addrs": [...]}`.
        #[arg(long)]
        json: bool,
    },
    /// List the running node's connected peers.
    Peers,
    /// What the running node's background jobs last did (GC, roots, repair, ...).
    Workers,
    /// Cluster durability on the running node: checks and repair.
    #[command(subcommand)]
    Cluster(ClusterCommand),
    /// Peers that announced in the DHT that they provide a CID (asks the running node).
    Providers {
        /// The CID.
        cid: String,
    },
    /// Connect the running node to a peer (`/ip4/.../tcp/.../p2p/<id>`; an IPFS node too).
    Dial {
        /// The peer's multiaddr.
        addr: String,
    },
}

pub use crate::daemon::config::ServeArgs;

#[derive(Debug, Args)]
pub struct AddArgs {
    /// Files or directories to add.
    pub paths: Vec<PathBuf>,
    /// Add directories recursively.
    #[arg(short, long)]
    pub recursive: bool,
    /// CID version: 0 (dag-pb leaves, Kubo's default) or 1 (raw leaves).
    #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u8).range(0..=1))]
    pub cid_version: u8,
    /// Include files and folders whose names start with a dot.
    #[arg(short = 'H', long)]
    pub hidden: bool,
    /// Print only the root CID of each argument.
    #[arg(short, long)]
    pub quiet: bool,
    /// Pin the added roots (default true, like Kubo).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub pin: bool,
}

#[derive(Debug, Args)]
pub struct CatArgs {
    /// `CID` or `CID/path/in/dir`.
    pub path: String,
    /// First byte to print.
    #[arg(long, default_value_t = 0)]
    pub offset: u64,
    /// Number of bytes to print (default: to the end).
    #[arg(long)]
    pub length: Option<u64>,
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// `CID` or `CID/path/in/dir`.
    pub path: String,
    /// Output path (default: the CID).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct PathArg {
    /// `CID` or `CID/path/in/dir`.
    pub path: String,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// `CID` or `CID/path/in/dir`.
    pub path: String,
    /// Re-hash every block and re-assemble every file.
    #[arg(long)]
    pub hard: bool,
}

#[derive(Debug, Subcommand)]
pub enum CarCmd {
    /// Write the DAG under a CID as a CARv1 file (depth-first, like `ipfs dag export`).
    Export {
        /// `CID` or `CID/path`.
        path: String,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Import a CARv1 file; every block is verified, and a bad one rejects the whole file.
    Import {
        /// The CAR file.
        file: PathBuf,
        /// Do not pin the CAR's roots.
        #[arg(long)]
        no_pin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum UserCmd {
    /// Make a keypair: the secret is written (0600) to `--out` or the CLI config folder
    /// (`$XDG_CONFIG_HOME/cairn/users/NAME.key`), never to a data folder; prints the public
    /// key (`cpk1…`) to give to node operators and to people who share with you.
    Create {
        /// The key's name.
        name: String,
        /// Where to write the secret key.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print the public key of a key file (a path, or a name in the CLI config folder).
    Show {
        /// Key file or name.
        key: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum SnapshotCmd {
    /// List snapshots (all, or those of one name), oldest first: name, time, root CID.
    Ls {
        /// Only this name.
        name: Option<String>,
    },
    /// Forget snapshots of a name; `cairn gc` then frees blocks nothing else keeps.
    #[command(group(clap::ArgGroup::new("which").required(true).args(["all", "cid", "keep_last"])))]
    Rm {
        /// The snapshot name.
        name: String,
        /// Every snapshot of the name.
        #[arg(long)]
        all: bool,
        /// The snapshots whose root is this CID.
        #[arg(long)]
        cid: Option<String>,
        /// All but the newest N.
        #[arg(long, value_name = "N")]
        keep_last: Option<usize>,
    },
}

#[derive(Debug, Subcommand)]
pub enum PinCmd {
    /// List pinned roots.
    Ls,
    /// Pin roots (their DAG must be complete).
    Add {
        /// CIDs or paths.
        #[arg(required = true)]
        paths: Vec<String>,
    },
    /// Remove pins.
    Rm {
        /// CIDs or paths.
        #[arg(required = true)]
        paths: Vec<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum SftpCmd {
    /// Add an account with its home bucket, or another SSH key to an account.
    Add {
        /// The account: also its S3 user and home bucket (bucket-name rules).
        name: String,
        /// A public key file (`~/.ssh/id_ed25519.pub`).
        #[arg(
            long,
            required_unless_present = "key_text",
            conflicts_with = "key_text"
        )]
        key: Option<PathBuf>,
        /// A public key as text (`ssh-ed25519 AAAA… comment`).
        #[arg(long)]
        key_text: Option<String>,
        /// Bytes the home may hold: `10GiB`, `500MiB`, … (default: no limit).
        #[arg(long)]
        quota: Option<String>,
        /// What an upload past the quota does: `refuse` (default) or `evict-oldest`.
        #[arg(long)]
        policy: Option<String>,
    },
    /// List the accounts, their quotas and keys.
    List,
    /// Remove an account (its keys stop working; its home bucket and files stay).
    Remove {
        /// The account.
        name: String,
    },
    /// Bytes an account's home holds, and its quota.
    Usage {
        /// The account.
        name: String,
    },
    /// Set an account's quota (`none`: no limit) and, optionally, its policy.
    SetQuota {
        /// The account.
        name: String,
        /// `10GiB`, `500MiB`, … or `none`.
        quota: String,
        /// `refuse` or `evict-oldest`.
        #[arg(long)]
        policy: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeyCmd {
    /// Create a key pair for a user; prints the access and secret key once.
    Create {
        /// The user the key belongs to (buckets are owned by users).
        #[arg(long)]
        user: String,
    },
    /// List access keys and their users.
    List,
    /// Delete an access key.
    Delete {
        /// The access key.
        access_key: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum BucketCmd {
    /// List buckets with their owners and whether they are public.
    List,
    /// Create a bucket (owned by the root user). With `--encrypted`, every object written to
    /// it is encrypted before it is chunked (its CIDs are of ciphertext; buckets are plaintext
    /// by default so the IPFS face works).
    Create {
        /// The bucket.
        bucket: String,
        /// Encrypt every write (default bucket encryption, like S3 PutBucketEncryption).
        #[arg(long)]
        encrypted: bool,
    },
    /// Show or set the bucket's default encryption (`on` or `off`; objects keep how they
    /// were written).
    Encryption {
        /// The bucket.
        bucket: String,
        /// `on` or `off`.
        #[arg(value_parser = ["on", "off"])]
        state: Option<String>,
    },
    /// Let anyone read a bucket without credentials (or make it private again).
    SetPublic {
        /// The bucket.
        bucket: String,
        /// Make the bucket private again.
        #[arg(long)]
        off: bool,
    },
    /// Print the bucket's current root CID (a UnixFS directory of its objects).
    Root {
        /// The bucket.
        bucket: String,
    },
    /// List the bucket's retained roots with their times, oldest first.
    History {
        /// The bucket.
        bucket: String,
    },
    /// Make an old root current again (as a new version; nothing is destroyed).
    Restore {
        /// The bucket.
        bucket: String,
        /// A root (or version record) CID from the bucket's history.
        #[arg(long)]
        root: String,
    },
    /// Take over a bucket whose owner node is gone (a read-only mirror here): this node
    /// gathers the newest head the cluster holds and becomes the owner, so writes work again.
    Promote {
        /// The bucket.
        bucket: String,
        /// Even while the owner is connected (it steps down when it sees the new head).
        #[arg(long)]
        force: bool,
    },
    /// Show or set how the cluster keeps the bucket's data (`replicas:N` or `ec:K+M`) when not
    /// the cluster's default; `default` goes back to it. Applies to writes from now on.
    Redundancy {
        /// The bucket.
        bucket: String,
        /// The policy, e.g. `replicas:3` or `ec:16+4`, or `default`.
        policy: Option<String>,
    },
    /// Write the bucket's current root as a CARv1 file.
    Export {
        /// The bucket.
        bucket: String,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
    },
    /// Create a bucket from a CARv1 file of a UnixFS directory.
    Import {
        /// The new bucket.
        bucket: String,
        /// The CAR file.
        file: PathBuf,
    },
    /// Print the bucket's signed head (and write it, dag-cbor, with -o).
    Head {
        /// The bucket.
        bucket: String,
        /// Write the signed head (dag-cbor) here.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Verify a signed head file written by `bucket head -o` (needs no node).
    VerifyHead {
        /// The dag-cbor head file.
        file: PathBuf,
        /// The signer's ed25519 public key (hex) that must have signed it.
        #[arg(long)]
        key: Option<String>,
    },
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// S3 endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub endpoint: String,
    /// Access key (default: AWS_ACCESS_KEY_ID, then CAIRN_ROOT_ACCESS_KEY).
    #[arg(long)]
    pub access_key: Option<String>,
    /// Secret key (default: AWS_SECRET_ACCESS_KEY, then CAIRN_ROOT_SECRET_KEY).
    #[arg(long)]
    pub secret_key: Option<String>,
    /// Region to sign for.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Size of each large object, in MiB.
    #[arg(long, default_value_t = 32)]
    pub large_mib: usize,
    /// Number of large objects.
    #[arg(long, default_value_t = 16)]
    pub large_count: usize,
    /// Number of 4 KiB objects.
    #[arg(long, default_value_t = 2000)]
    pub small_count: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 8)]
    pub concurrency: usize,
    /// Size of the multipart object, in MiB (8 MiB parts).
    #[arg(long, default_value_t = 256)]
    pub multipart_mib: usize,
}

/// `cairn cluster ...`
#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Check the stripes and replicas this node holds: soft (every piece where it should be,
    /// and the margin), or `--hard` (rebuild from parity and compare every CID). With
    /// `BUCKET`, `BUCKET/KEY` or `--objects`: the objects, by margin (how many more node
    /// losses each survives; `--hard` also reads and re-hashes every block).
    Check {
        /// Rebuild and verify instead of only counting pieces.
        #[arg(long)]
        hard: bool,
        /// A bucket, or one object as `BUCKET/KEY`.
        target: Option<String>,
        /// Every object of every bucket.
        #[arg(long, conflicts_with = "target")]
        objects: bool,
    },
    /// Re-create now the pieces that are missing from their targets.
    Repair,
    /// Print a token another node joins this cluster with (`cairn serve --join TOKEN`): the
    /// cluster secret, the admin's public key and this node's p2p addresses. Keep it secret.
    Invite {
        /// Include the cluster admin key, so the new node may also `cairn bucket promote`.
        #[arg(long)]
        admin: bool,
    },
}
