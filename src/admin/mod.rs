//! The local admin API: while `run` holds the store (sled allows one
//! process), the CLI's read-only views, `backup`, and the changes
//! `cases erase` and `cases purge` are answered by the daemon over a unix
//! socket. A change is handed to the worker as a [`Job`] and runs between
//! its passes, so it never interleaves with a case being handled (which
//! would write an erased case back).
//!
//! The guard is the file system and the kernel: the socket is created mode
//! 0600 (bound under a temporary name, then renamed into place, so it is
//! never reachable with looser rights), and each connection's peer must
//! have the daemon's own uid or be root. Nothing listens on a network
//! interface.
//!
//! The protocol is one JSON [`Request`] line from the client; the daemon
//! answers with one JSON [`Reply`] line, then the body (the text the CLI
//! prints, or the backup bytes) until it closes the connection.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::net::{UnixListener, UnixStream};

use crate::error::{Error, Result};
use crate::report::Query;
use crate::store::Store;

/// Longest request line accepted; a query is a few hundred bytes.
const MAX_REQUEST: u64 = 64 * 1024;

/// How long the CLI waits for the daemon's answer.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(120);

/// What the CLI asks the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// A cases or follow-ups view.
    Report {
        /// Which view.
        query: Query,
    },
    /// A backup of the whole store (see [`Store::write_backup`]).
    Backup,
    /// One stored case as JSON and its queue position (`templates preview
    /// --case`).
    CaseRecord {
        /// The case.
        id: crate::domain::CaseId,
    },
    /// `cases erase`.
    Erase {
        /// What to erase, who asks, and whether for real.
        erase: crate::retention::Erase,
    },
    /// `cases purge`: retention now.
    Purge {
        /// Keep closed cases this many seconds.
        keep_for: i64,
        /// Who asks.
        by: String,
    },
}

/// What a job does with the worker's store: the answer's body.
type Work = Box<dyn FnOnce(&Store) -> anyhow::Result<Vec<u8>> + Send>;

/// A change the worker runs between its passes, answered through `reply`.
pub struct Job {
    work: Work,
    reply: tokio::sync::oneshot::Sender<anyhow::Result<Vec<u8>>>,
}

impl Job {
    /// Runs the change on the worker's store and sends the answer back.
    pub fn run(self, store: &Store) {
        let _ = self.reply.send((self.work)(store));
    }
}

/// The worker's end of the job queue.
pub type Jobs = tokio::sync::mpsc::Receiver<Job>;

/// A job queue: the admin server sends, the worker runs.
pub fn jobs() -> (tokio::sync::mpsc::Sender<Job>, Jobs) {
    tokio::sync::mpsc::channel(8)
}

/// The daemon's first answer line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// Whether the body is the answer (else `error` says why).
    pub ok: bool,
    /// What went wrong.
    #[serde(default)]
    pub error: Option<String>,
}

/// A running admin socket; removes the socket file when dropped.
pub struct Server {
    path: PathBuf,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the socket at `path` and serves `store` until the server is
/// dropped. Changes go to `jobs` (the worker) when given, else they run
/// here (nothing else writes the store then).
pub fn serve(
    path: &Path,
    store: Store,
    jobs: Option<tokio::sync::mpsc::Sender<Job>>,
) -> Result<Server> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    // A socket left by a daemon that was killed answers nobody: replace it.
    // A live one means a second daemon, which sled has already refused.
    if path.exists() {
        std::fs::remove_file(path).map_err(|e| Error::io(path, e))?;
    }
    let staging = path.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&staging);
    let listener = UnixListener::bind(&staging).map_err(|e| {
        Error::Config(format!(
            "admin.socket: cannot listen on {}: {e}",
            path.display()
        ))
    })?;
    std::fs::set_permissions(&staging, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io(&staging, e))?;
    std::fs::rename(&staging, path).map_err(|e| Error::io(path, e))?;
    let own_uid = own_uid();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let allowed = stream
                .peer_cred()
                .is_ok_and(|c| c.uid() == 0 || Some(c.uid()) == own_uid);
            if !allowed {
                tracing::warn!("admin socket: refused a connection from another user");
                continue;
            }
            let store = store.clone();
            let jobs = jobs.clone();
            tokio::spawn(async move {
                if let Err(e) = handle(stream, store, jobs).await {
                    tracing::warn!(error.message = %e, "admin request failed");
                }
            });
        }
    });
    Ok(Server {
        path: path.to_path_buf(),
        task,
    })
}

/// The daemon's uid, from the owner of its own /proc entry (no libc).
fn own_uid() -> Option<u32> {
    std::fs::metadata("/proc/self").ok().map(|m| m.uid())
}

async fn handle(
    stream: UnixStream,
    store: Store,
    jobs: Option<tokio::sync::mpsc::Sender<Job>>,
) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    tokio::io::BufReader::new(tokio::io::AsyncReadExt::take(read, MAX_REQUEST))
        .read_line(&mut line)
        .await?;
    let answer = match serde_json::from_str::<Request>(&line) {
        Ok(request) if request.runs_in_worker() && jobs.is_some() => {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let job = Job {
                work: Box::new(move |store: &Store| body(store, &request)),
                reply,
            };
            match jobs.as_ref().map(|j| j.try_send(job)) {
                Some(Ok(())) => answer
                    .await
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("the worker stopped first"))),
                _ => Err(anyhow::anyhow!(
                    "the worker is busy with other changes; try again"
                )),
            }
        }
        Ok(request) => tokio::task::spawn_blocking(move || body(&store, &request))
            .await
            .map_err(|e| anyhow::anyhow!("admin request panicked: {e}"))
            .and_then(|r| r),
        Err(e) => Err(anyhow::anyhow!("not an admin request: {e}")),
    };
    let (reply, body) = match answer {
        Ok(body) => (
            Reply {
                ok: true,
                error: None,
            },
            body,
        ),
        Err(e) => (
            Reply {
                ok: false,
                error: Some(format!("{e:#}")),
            },
            Vec::new(),
        ),
    };
    let mut head = serde_json::to_vec(&reply).unwrap_or_default();
    head.push(b'\n');
    write.write_all(&head).await?;
    write.write_all(&body).await?;
    write.shutdown().await
}

fn body(store: &Store, request: &Request) -> anyhow::Result<Vec<u8>> {
    match request {
        Request::Report { query } => {
            Ok(crate::report::answer(store, query, crate::clock::now())?.into_bytes())
        }
        Request::Backup => {
            let mut out = Vec::new();
            store.write_backup(&mut out)?;
            Ok(out)
        }
        Request::CaseRecord { id } => {
            let case = store
                .case(id)?
                .ok_or_else(|| anyhow::anyhow!("no case {id}"))?;
            let position = store.queue_position(&case)?;
            Ok(serde_json::to_vec(&(case, position))?)
        }
        Request::Erase { erase } => {
            Ok(crate::retention::erase(store, erase, crate::clock::now())?.into_bytes())
        }
        Request::Purge { keep_for, by } => {
            Ok(crate::retention::purge(store, *keep_for, by, crate::clock::now())?.into_bytes())
        }
    }
}

impl Request {
    /// Whether the worker must answer it between passes: a change, or a
    /// backup, which is then one instant's state (no commit runs meanwhile).
    fn runs_in_worker(&self) -> bool {
        matches!(
            self,
            Request::Erase { .. } | Request::Purge { .. } | Request::Backup
        )
    }
}

/// Asks the daemon listening at `path`. `Ok(None)` when no daemon answers
/// there (no socket, or a stale one), so the caller opens the store itself;
/// `out` receives the body of a successful answer.
pub fn ask(path: &Path, request: &Request, out: &mut dyn Write) -> anyhow::Result<Option<()>> {
    let Ok(mut stream) = std::os::unix::net::UnixStream::connect(path) else {
        return Ok(None);
    };
    stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
    let mut line = serde_json::to_vec(request)?;
    line.push(b'\n');
    stream.write_all(&line)?;
    let mut reader = BufReader::new(stream);
    let mut head = String::new();
    reader.read_line(&mut head)?;
    let reply: Reply = serde_json::from_str(&head)
        .map_err(|e| anyhow::anyhow!("the daemon at {} answered oddly: {e}", path.display()))?;
    if !reply.ok {
        anyhow::bail!(
            "{}",
            reply.error.unwrap_or_else(|| "the daemon refused".into())
        );
    }
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buf)?;
        if n == 0 {
            return Ok(Some(()));
        }
        out.write_all(&buf[..n])?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_report_is_answered_over_the_socket_which_only_the_owner_can_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        let _server = serve(&path, Store::temporary().unwrap(), None).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let request = Request::Report {
            query: Query::List {
                filter: Default::default(),
            },
        };
        let text = tokio::task::spawn_blocking(move || {
            let mut out = Vec::new();
            let asked = ask(&path, &request, &mut out).unwrap();
            (asked, String::from_utf8(out).unwrap())
        })
        .await
        .unwrap();
        assert_eq!(text.0, Some(()));
        assert!(text.1.contains("0 case(s), 0 open"), "{}", text.1);
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn backups_and_erasures_wait_for_the_worker_so_no_commit_runs_meanwhile() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin.sock");
        let store = Store::temporary().unwrap();
        let (tx, mut queue) = jobs();
        let _server = serve(&path, store.clone(), Some(tx)).unwrap();
        let erase = Request::Erase {
            erase: crate::retention::Erase {
                target: crate::store::EraseTarget::Address("jo@example.org".into()),
                reason: "test".into(),
                by: "op".into(),
                confirmed: true,
            },
        };
        for request in [Request::Backup, erase] {
            let client = {
                let path = path.clone();
                tokio::task::spawn_blocking(move || {
                    let mut out = Vec::new();
                    ask(&path, &request, &mut out).unwrap();
                    out
                })
            };
            // The request reaches the worker's queue instead of being
            // answered beside it; the worker runs it between passes.
            let job = tokio::time::timeout(Duration::from_secs(30), queue.recv())
                .await
                .expect("the request was handed to the worker")
                .unwrap();
            job.run(&store);
            let body = client.await.unwrap();
            assert!(!body.is_empty());
        }
    }

    #[test]
    fn no_daemon_means_none_so_the_caller_opens_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let mut out = Vec::new();
        let asked = ask(&dir.path().join("none.sock"), &Request::Backup, &mut out).unwrap();
        assert_eq!(asked, None);
    }
}
