//! Everything the pipeline learns from one message on its own, without the
//! store, the clock or the directory: the parsed message, its class, who
//! it claims to be, the new text with secrets and codes taken out, the
//! request's fields and its language.
//!
//! [`read`] is pure and about half the CPU a message costs, so the worker
//! has it done on other cores ([`ReadAhead`]) while it does the store work,
//! which stays sequential so that threading and the case rules see
//! messages in the order they arrived.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;

use crate::authres::{self, StaffTrust};
use crate::classify::{self, Classification};
use crate::config::Settings;
use crate::error::{Error, Result};
use crate::parse::{self, Inbound};
use crate::request::{self, RequestFields};
use crate::signature::StaffVerify;
use crate::source::Fetched;
use crate::{lang, quote, secrets, verify};

/// Longest excerpt of a message kept for staff notifications (characters).
const EXCERPT_CHARS: usize = 2000;

/// What one message says, read without the store.
#[derive(Debug, Clone)]
pub struct Reading {
    /// The parsed message.
    pub inbound: Inbound,
    /// Its class from headers and content (the store may still say it is
    /// mail we sent ourselves).
    pub classification: Classification,
    /// Whether it comes from staff, with trusted proof.
    pub staff: StaffTrust,
    /// The new text (quotes and signatures cut), secrets still in.
    pub new_text_raw: String,
    /// The new text with secrets replaced: what is stored and shown.
    pub redacted: secrets::Redacted,
    /// The redacted new text with challenge codes removed, shortened for
    /// staff notifications.
    pub excerpt: String,
    /// Codes in the new text, in the order they are tried.
    pub new_codes: Vec<String>,
    /// Codes found only in quoted history (when the new text has none).
    pub quoted_codes: Vec<String>,
    /// The request's fields (empty for machine and staff mail, and for a
    /// message too large to have its body fetched).
    pub fields: RequestFields,
    /// The language of the new text, when it can be told.
    pub language: Option<String>,
    /// The copy to store when the message holds a secret anywhere (any
    /// header a person writes, any text part, quoted history included);
    /// `None` keeps the bytes as they came.
    pub(crate) kept: Option<crate::at_rest::Kept>,
    /// The attachments of the message as kept (redaction leaves them as
    /// they are), listed for staff.
    pub attachments: Vec<crate::attachments::Listed>,
}

impl Reading {
    /// The bytes the store keeps of this message: never a secret in clear.
    /// A redacted copy is moved out, not copied (a 10 MB message held a
    /// third copy of itself here); call it once.
    pub fn take_raw_to_keep(&mut self, fetched: &Fetched) -> Vec<u8> {
        match &mut self.kept {
            Some(kept) => std::mem::take(&mut kept.bytes),
            None => fetched.raw.clone(),
        }
    }

    /// Every kind of secret the message held: in the new text, and in a
    /// subject or quoted text, which the requester should revoke as well.
    pub fn secrets_found(&self) -> Vec<secrets::SecretKind> {
        let mut found = self.redacted.found.clone();
        for kind in self.kept.iter().flat_map(|k| &k.found) {
            if !found.contains(kind) {
                found.push(*kind);
            }
        }
        found
    }
}

/// Reads one message. A panic anywhere in reading becomes an error, so the
/// message is kept and set aside instead of stopping the worker.
pub fn read(fetched: &Fetched, settings: &Settings) -> Result<Reading> {
    // mail-parser 0.11 can panic on hostile MIME (a debug assertion,
    // "Invalid part ID", in debug builds). A panic here would stop the
    // worker before the commit, and the same message would stop it
    // again after every restart.
    let inbound = catch_unwind(|| parse::parse(&fetched.raw))
        .map_err(|_| Error::Permanent("the MIME parser panicked on this message".into()))?;
    catch_unwind(AssertUnwindSafe(|| read_parsed(inbound, fetched, settings))).map_err(|_| {
        Error::Permanent("reading this message panicked (a bug; the message is kept)".into())
    })
}

/// Readings of a batch made on background threads while the caller works
/// through the earlier ones; handed out in the batch's order. A caller
/// whose next reading is not ready yet reads the next unclaimed message
/// itself instead of waiting: on two cores one reader thread alone was
/// the bottleneck of a backlog (reading costs more than the store work),
/// and the caller's otherwise idle time now shares it.
pub struct ReadAhead {
    shared: Arc<Shared>,
    next: usize,
}

/// Readings each reader (the caller counts as one) may be ahead of the
/// caller: enough to keep the caller busy, few enough that large messages
/// do not pile up.
const AHEAD_PER_LANE: usize = 4;

/// What the readers and the caller share.
struct Shared {
    batch: Arc<Vec<Fetched>>,
    settings: Arc<Settings>,
    /// No message at or past `taken + window` is claimed.
    window: usize,
    state: std::sync::Mutex<Progress>,
    /// Readers wait here for the window to move on.
    room: std::sync::Condvar,
    /// The caller waits here for a reading (or for a reader to stop).
    filled: tokio::sync::Notify,
}

/// Where the batch stands.
struct Progress {
    /// The next message nobody has started to read.
    claimed: usize,
    /// How many readings the caller has taken.
    taken: usize,
    /// Finished readings not yet taken, by index.
    done: std::collections::BTreeMap<usize, Result<Reading>>,
    /// Reader threads still running.
    readers: usize,
    /// The caller is gone (a store error stopped the batch).
    dropped: bool,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Progress> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Claims the next message if the window allows it.
    fn try_claim(&self, progress: &mut Progress) -> Option<usize> {
        let i = progress.claimed;
        (i < self.batch.len() && i < progress.taken + self.window).then(|| {
            progress.claimed += 1;
            i
        })
    }

    /// Reads message `i` and hands the reading over.
    fn read_and_put(&self, i: usize) {
        let reading = read(&self.batch[i], &self.settings);
        self.lock().done.insert(i, reading);
        self.filled.notify_waiters();
    }

    /// A reader thread: claims and reads until the batch is done or the
    /// caller is gone.
    fn reader(&self) {
        loop {
            let claimed = {
                let mut progress = self.lock();
                loop {
                    if progress.dropped || progress.claimed >= self.batch.len() {
                        break None;
                    }
                    if let Some(i) = self.try_claim(&mut progress) {
                        break Some(i);
                    }
                    progress = self.room.wait(progress).unwrap_or_else(|e| e.into_inner());
                }
            };
            match claimed {
                Some(i) => self.read_and_put(i),
                None => return,
            }
        }
    }
}

/// Counts a reader thread out however it ends, so that the caller never
/// waits for a reading no thread will make.
struct ReaderGuard(Arc<Shared>);

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        self.0.lock().readers -= 1;
        self.0.filled.notify_waiters();
    }
}

impl ReadAhead {
    /// Starts `threads` readers over `batch` (none reads with the caller
    /// alone). Needs a tokio runtime.
    pub fn start(batch: Arc<Vec<Fetched>>, settings: Arc<Settings>, threads: usize) -> Self {
        let threads = threads.min(batch.len());
        let shared = Arc::new(Shared {
            batch,
            settings,
            window: AHEAD_PER_LANE * (threads + 1),
            state: std::sync::Mutex::new(Progress {
                claimed: 0,
                taken: 0,
                done: std::collections::BTreeMap::new(),
                readers: threads,
                dropped: false,
            }),
            room: std::sync::Condvar::new(),
            filled: tokio::sync::Notify::new(),
        });
        for _ in 0..threads {
            let guard = ReaderGuard(shared.clone());
            tokio::task::spawn_blocking(move || guard.0.reader());
        }
        ReadAhead { shared, next: 0 }
    }

    /// The reading of the next message of the batch.
    pub async fn next(&mut self) -> Result<Reading> {
        let i = self.next;
        self.next += 1;
        if i >= self.shared.batch.len() {
            return Err(Error::Permanent("no message left in the batch".into()));
        }
        loop {
            let filled = self.shared.filled.notified();
            tokio::pin!(filled);
            // Registered before looking, so a reading put meanwhile wakes us.
            filled.as_mut().enable();
            let claimed = {
                let mut progress = self.shared.lock();
                if let Some(reading) = progress.done.remove(&i) {
                    progress.taken = i + 1;
                    drop(progress);
                    self.shared.room.notify_all();
                    return reading;
                }
                match self.shared.try_claim(&mut progress) {
                    Some(j) => Some(j),
                    // `read` catches its own panics, so this is a reader
                    // thread that could not run to the end at all.
                    None if progress.readers == 0 && progress.claimed > i => {
                        return Err(Error::Permanent(
                            "the reader thread stopped before this message".into(),
                        ))
                    }
                    None => None,
                }
            };
            match claimed {
                Some(j) => self.shared.read_and_put(j),
                None => filled.await,
            }
        }
    }
}

impl Drop for ReadAhead {
    fn drop(&mut self) {
        self.shared.lock().dropped = true;
        self.shared.room.notify_all();
    }
}

/// Threads worth using for reading on this machine: one core is left to
/// the caller, which does the store work at the same time and reads too
/// whenever its next reading is not ready (on 2 cores a second reader
/// thread only added memory: regex caches and a malloc arena each).
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().saturating_sub(1).clamp(1, 8))
}

fn read_parsed(inbound: Inbound, fetched: &Fetched, settings: &Settings) -> Reading {
    let classification =
        classify::classify_with(&inbound, &settings.instance.id, &settings.own_addresses);
    // Under staff.verify = "dkim" the pipeline checks the signature (I/O)
    // and replaces this verdict before routing.
    let staff = match settings.staff.verify {
        StaffVerify::AuthenticationResults => authres::staff_trust(&inbound, &settings.staff),
        StaffVerify::Dkim => authres::staff_trust_by_signature(&inbound, &settings.staff, None),
    };
    let new_text_raw = quote::new_text(&inbound.text, inbound.html.as_deref());
    let redacted = secrets::redact(&new_text_raw);
    let codes = verify::CodeScan::new(&new_text_raw);
    // Codes are found in the raw text (a code next to a redacted secret is
    // still a code); the excerpt hides them in the redacted text. When
    // nothing was redacted the two texts are one and one scan serves both.
    let shown = if redacted.text == new_text_raw {
        codes.replaced(&new_text_raw, CODE_REMOVED)
    } else {
        verify::redact_codes(&redacted.text, CODE_REMOVED)
    };
    let new_codes = codes.attempt_candidates();
    // Codes in the quoted history matter only when the new text has none
    // (the core then logs that a quoted code is no confirmation), and only
    // if there is history at all: skip the scan otherwise.
    let quoted_codes = if new_codes.is_empty() && inbound.text.len() > new_text_raw.len() {
        verify::attempt_candidates(&inbound.text)
    } else {
        Vec::new()
    };
    let asks = !classification.kind.is_machine()
        && !matches!(staff, StaffTrust::Staff { .. })
        && fetched.oversize.is_none();
    let (fields, language) = if asks {
        (
            request::extract(
                &redacted.text,
                &inbound.subject,
                &[settings.support_address.to_string()],
            ),
            lang::detect(&redacted.text),
        )
    } else {
        (RequestFields::default(), None)
    };
    let (kept, attachments) = crate::at_rest::redact_and_list(&fetched.raw);
    Reading {
        excerpt: excerpt(&shown),
        inbound,
        classification,
        staff,
        new_text_raw,
        redacted,
        new_codes,
        quoted_codes,
        fields,
        language,
        kept,
        attachments,
    }
}

/// What a challenge code typed back becomes in anything staff see.
const CODE_REMOVED: &str = "[challenge code removed]";

fn excerpt(text: &str) -> String {
    match text.char_indices().nth(EXCERPT_CHARS) {
        Some((cut, _)) => format!("{}\n[…]", &text[..cut]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> Settings {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("secret.key"),
            "reading-test-key-0123456789abcdef",
        )
        .unwrap();
        Settings::from_toml(crate::config::DEMO_TOML, dir.path(), "test").unwrap()
    }

    fn fetched(raw: &str) -> Fetched {
        Fetched {
            source_id: "t".into(),
            raw: raw.as_bytes().to_vec(),
            oversize: None,
            cursor: None,
        }
    }

    const REQUEST: &str = "From: Ana <ana@example.org>\r\nTo: support@example.org\r\n\
        Subject: Lost 2FA\r\nMessage-ID: <r1@example.org>\r\n\r\n\
        Hello, my username is anapkg and I lost my phone with the authenticator app.\r\n\
        My code was ab3d efgh if that helps.\r\n";

    #[test]
    fn a_request_is_read_with_fields_language_and_codes_hidden() {
        let reading = read(&fetched(REQUEST), &settings()).unwrap();
        assert_eq!(reading.fields.username.as_deref(), Some("anapkg"));
        assert_eq!(reading.language.as_deref(), Some("en"));
        assert_eq!(reading.new_codes, vec!["AB3D-EFGH".to_string()]);
        assert!(
            reading.excerpt.contains(CODE_REMOVED),
            "{}",
            reading.excerpt
        );
        assert!(!reading.excerpt.contains("ab3d"));
    }

    #[test]
    fn machine_mail_is_not_read_as_a_request() {
        let raw = REQUEST.replace("Subject:", "Auto-Submitted: auto-replied\r\nSubject:");
        let reading = read(&fetched(&raw), &settings()).unwrap();
        assert!(reading.classification.kind.is_machine());
        assert_eq!(reading.fields, RequestFields::default());
        assert_eq!(reading.language, None);
    }

    #[test]
    fn mail_from_our_own_addresses_is_our_own_mail() {
        let settings = settings();
        let support = settings.support_address.as_str().to_string();
        let (local, domain) = support.split_once('@').unwrap();
        for from in [
            support.clone(),
            format!("{local}+RD-7K3M9Q.abc123@{domain}"),
        ] {
            let raw = REQUEST.replace("Ana <ana@example.org>", &format!("Desk <{from}>"));
            let reading = read(&fetched(&raw), &settings).unwrap();
            assert_eq!(
                reading.classification.kind,
                crate::classify::MessageKind::OwnLoop,
                "{from}: {}",
                reading.classification.reason
            );
            assert_eq!(reading.fields, RequestFields::default());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn readings_ahead_on_many_threads_keep_the_batch_order() {
        let batch: Vec<Fetched> = (0..37)
            .map(|i| fetched(&REQUEST.replace("anapkg", &format!("pkg{i:02}"))))
            .collect();
        let mut ahead = ReadAhead::start(Arc::new(batch), Arc::new(settings()), 4);
        let mut names = Vec::new();
        for _ in 0..37 {
            names.push(ahead.next().await.unwrap().fields.username.unwrap());
        }
        let expected: Vec<_> = (0..37).map(|i| format!("pkg{i:02}")).collect();
        assert_eq!(names, expected);
        assert!(ahead.next().await.is_err(), "nothing past the batch");
    }

    /// With the blocking pool taken (here by a task that waits for the
    /// test), no reader thread ever runs: the caller reads the batch
    /// itself, in order. Before, it waited for its lane forever.
    #[test]
    fn the_caller_reads_what_no_reader_thread_gets_to() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .max_blocking_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (release, held) = std::sync::mpsc::channel::<()>();
        runtime.block_on(async {
            let blocker = tokio::task::spawn_blocking(move || held.recv().ok());
            let batch: Vec<Fetched> = (0..9)
                .map(|i| fetched(&REQUEST.replace("anapkg", &format!("pkg{i:02}"))))
                .collect();
            let mut ahead = ReadAhead::start(Arc::new(batch), Arc::new(settings()), 2);
            let mut names = Vec::new();
            for _ in 0..9 {
                let next = tokio::time::timeout(std::time::Duration::from_secs(60), ahead.next());
                let reading = next.await.expect("the caller read it itself").unwrap();
                names.push(reading.fields.username.unwrap());
            }
            let expected: Vec<_> = (0..9).map(|i| format!("pkg{i:02}")).collect();
            assert_eq!(names, expected);
            release.send(()).unwrap();
            blocker.await.unwrap();
        });
    }

    #[test]
    fn the_excerpt_is_cut_on_a_character_boundary() {
        let long = "é".repeat(EXCERPT_CHARS + 5);
        let cut = excerpt(&long);
        assert!(cut.ends_with("\n[…]"));
        assert_eq!(cut.chars().count(), EXCERPT_CHARS + 4);
    }
}
