//! Operator commands. The only module (with `main`) that knows argv and
//! exit codes: 0 success, 1 failure at run time, 2 bad configuration.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use crate::admin::Request;
use crate::case::{Case, CaseState, Direction};
use crate::config::Settings;
use crate::domain::{CaseId, Priority};
use crate::error::Error;
use crate::report::{CaseFilter, Query};
use crate::store::Store;
use crate::thread::{reply_address, Role};
use crate::worker::Worker;

/// Email-driven account-recovery support inbox processor.
#[derive(Debug, Parser)]
#[command(name = "recoverydesk", version, about)]
pub struct Cli {
    /// Config file; the embedded demo config when absent (replay, inspect).
    #[arg(long, global = true, env = "RECOVERYDESK_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, default_value = "human", value_parser = ["human", "json"])]
    pub log_format: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a demo folder with sample mail and run the whole flow on it.
    Demo {
        /// Folder to create.
        #[arg(long, default_value = "demo")]
        dir: PathBuf,
    },
    /// Run until SIGINT/SIGTERM.
    Run {
        /// Shadow mode: store and render, but do not mark the source.
        #[arg(long)]
        dry_run: bool,
    },
    /// One pass (mail, timers, outbox), then exit.
    Once,
    /// Run the pipeline over a Maildir, mbox or folder of .eml files on a throwaway store.
    Replay {
        /// Maildir, mbox file, folder of .eml files, or one .eml.
        path: PathBuf,
        /// One JSON object per message.
        #[arg(long)]
        json: bool,
        /// Only parse each message (the benchmark's baseline), no pipeline.
        #[arg(long, hide = true)]
        parse_only: bool,
    },
    /// Show what the pipeline understands of one message.
    Inspect {
        /// The .eml file.
        file: PathBuf,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Look at cases.
    Cases {
        /// Read the shadow store that `run --dry-run` fills instead of the real one.
        #[arg(long)]
        shadow: bool,
        /// Which view.
        #[command(subcommand)]
        view: CasesView,
    },
    /// List the follow-ups that will be sent.
    Followups {
        /// How far ahead, e.g. `7d`.
        #[arg(long, default_value = "7d")]
        within: String,
    },
    /// Check and preview templates.
    Templates {
        /// Which action.
        #[command(subcommand)]
        action: TemplatesAction,
    },
    /// Check config, directory, mailboxes, templates and store.
    Doctor {
        /// Instead, send a probe through the SMTP transport, read it back
        /// over IMAP and print the `trusted_received_hops` to configure.
        #[arg(long)]
        staff_probe: bool,
    },
    /// Write a backup of the store to FILE (through the running daemon, if any).
    Backup {
        /// The backup file to write.
        file: PathBuf,
    },
    /// Restore a backup into the configured store, which must be empty.
    Restore {
        /// The backup file to read.
        file: PathBuf,
    },
}

/// `cases list` / `cases export` filters; each one given must hold.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct FilterArgs {
    /// Only this state (awaiting_info, awaiting_verification, awaiting_staff, waiting_period, resolved, closed).
    #[arg(long, value_parser = parse_state)]
    pub state: Option<CaseState>,
    /// Only this priority (normal, high).
    #[arg(long, value_parser = parse_priority)]
    pub priority: Option<Priority>,
    /// Only cases naming this account username.
    #[arg(long)]
    pub username: Option<String>,
    /// Only cases with this requester or lookup address.
    #[arg(long)]
    pub address: Option<String>,
    /// Only cases opened at least this long ago, e.g. `7d`.
    #[arg(long, value_parser = parse_age)]
    pub older_than: Option<i64>,
    /// Only cases opened at most this long ago, e.g. `36h`.
    #[arg(long, value_parser = parse_age)]
    pub newer_than: Option<i64>,
    /// Only cases whose id, addresses, username, subjects or log contain this text.
    #[arg(long)]
    pub search: Option<String>,
}

impl From<FilterArgs> for CaseFilter {
    fn from(a: FilterArgs) -> Self {
        CaseFilter {
            state: a.state,
            priority: a.priority,
            username: a.username,
            address: a.address,
            older_than: a.older_than,
            newer_than: a.newer_than,
            search: a.search,
        }
    }
}

fn parse_state(text: &str) -> Result<CaseState, String> {
    serde_json::from_value(serde_json::Value::String(text.trim().to_lowercase()))
        .map_err(|_| format!("no state {text:?}"))
}

fn parse_priority(text: &str) -> Result<Priority, String> {
    serde_json::from_value(serde_json::Value::String(text.trim().to_lowercase()))
        .map_err(|_| format!("no priority {text:?} (normal or high)"))
}

fn parse_age(text: &str) -> Result<i64, String> {
    humantime::parse_duration(text.trim())
        .map(|d| d.as_secs() as i64)
        .map_err(|e| format!("{e} (write e.g. 7d or 36h)"))
}

/// `cases` views.
#[derive(Debug, Subcommand)]
pub enum CasesView {
    /// One line per case.
    List {
        /// Which cases.
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// One case with its messages and log.
    Show {
        /// Case id, e.g. RD-7K3M9Q.
        id: String,
        /// List the case's attachments (numbered) instead.
        #[arg(long)]
        attachments: bool,
    },
    /// Write one attachment of a case to stdout (`> file`).
    Attachment {
        /// Case id, e.g. RD-7K3M9Q.
        id: String,
        /// Its number in `cases show --attachments`.
        number: usize,
    },
    /// Every case as JSON lines.
    Export {
        /// JSON lines (the only format).
        #[arg(long)]
        json: bool,
        /// Which cases.
        #[command(flatten)]
        filter: FilterArgs,
    },
    /// Erase a case, or every case of an address (a data-subject request).
    #[command(group(clap::ArgGroup::new("target").required(true).args(["address", "case"])))]
    Erase {
        /// Every case this address wrote as a requester or asked about.
        #[arg(long)]
        address: Option<String>,
        /// One case, e.g. RD-7K3M9Q.
        #[arg(long = "case")]
        case: Option<String>,
        /// Why, for the audit trail (e.g. a ticket number).
        #[arg(long, default_value = "data-subject request")]
        reason: String,
        /// Erase for real; without it, only list what would go.
        #[arg(long)]
        yes: bool,
    },
    /// Apply `[retention] closed_after` now (the daemon does it hourly).
    Purge,
    /// The audit trail of purges and erasures.
    Audit,
}

/// `templates` actions.
#[derive(Debug, Subcommand)]
pub enum TemplatesAction {
    /// Compile and render every template with sample contexts.
    Check {
        /// Template folder (default: the config's, else the embedded set).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Render one template.
    Preview {
        /// Template kind, e.g. acknowledgement.
        name: String,
        /// Sample scenario.
        #[arg(long, default_value = "seed_2fa")]
        sample: String,
        /// Language.
        #[arg(long, default_value = "en")]
        lang: String,
        /// Write an .eml file instead of printing.
        #[arg(long)]
        eml: Option<PathBuf>,
        /// Template folder.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Render with this stored case's values instead of a sample (read
        /// only; needs --config).
        #[arg(long = "case")]
        case: Option<String>,
    },
}

/// The error and its causes on one line, each said once: a wrapped
/// error's text usually repeats its source's already.
pub fn describe(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for part in error.chain().map(|e| e.to_string()) {
        if text.contains(&part) {
            continue;
        }
        if !text.is_empty() {
            text.push_str(": ");
        }
        text.push_str(&part);
    }
    text
}

/// Maps an error chain to an exit code: 2 for configuration, else 1.
pub fn exit_code(error: &anyhow::Error) -> i32 {
    if error
        .chain()
        .any(|e| matches!(e.downcast_ref::<Error>(), Some(Error::Config(_))))
    {
        2
    } else {
        1
    }
}

fn load(config: Option<&Path>) -> anyhow::Result<Arc<Settings>> {
    let path = config
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("config.toml"));
    Ok(Arc::new(Settings::load(&path)?))
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Demo { dir } => demo(&dir).await,
        Command::Run { dry_run } => serve(load(cli.config.as_deref())?, dry_run).await,
        Command::Once => once(load(cli.config.as_deref())?).await,
        Command::Replay {
            path,
            json,
            parse_only,
        } => {
            if parse_only {
                crate::replay::parse_only(&path)
            } else {
                crate::replay::run(cli.config.as_deref(), &path, json).await
            }
        }
        Command::Inspect { file, json } => {
            crate::replay::inspect(cli.config.as_deref(), &file, json).await
        }
        Command::Cases { shadow, view } => cases(&*load(cli.config.as_deref())?, shadow, view),
        Command::Followups { within } => {
            let settings = load(cli.config.as_deref())?;
            let within =
                humantime::parse_duration(&within).context("--within: write e.g. 7d or 36h")?;
            let query = Query::Followups {
                within: within.as_secs() as i64,
            };
            report(&settings, false, &query)
        }
        Command::Backup { file } => backup(&*load(cli.config.as_deref())?, &file),
        Command::Restore { file } => restore(&*load(cli.config.as_deref())?, &file),
        Command::Templates { action } => templates(cli.config.as_deref(), action),
        Command::Doctor { staff_probe: true } => {
            crate::staff_probe::doctor(cli.config.as_deref()).await
        }
        Command::Doctor { staff_probe: false } => crate::ops::doctor(cli.config.as_deref()).await,
    }
}

/// `run`: the daemon, until a signal stops it.
async fn serve(settings: Arc<Settings>, dry_run: bool) -> anyhow::Result<()> {
    let mut worker = Worker::open(settings.clone(), false, dry_run).await?;
    let _metrics = crate::ops::start_metrics(&settings, &worker.pipeline).await?;
    let _watch = crate::ops::watch_templates(&settings, &worker.pipeline)?;
    // A shadow run works on its own store: the CLI must keep
    // reading the real one, so it serves no admin socket.
    let (jobs, queue) = crate::admin::jobs();
    let _admin = if settings.serve_admin && !dry_run {
        Some(crate::admin::serve(
            &settings.admin_socket,
            worker.pipeline.store.clone(),
            Some(jobs),
        )?)
    } else {
        None
    };
    // Signal handlers exist before anything else can take time.
    let stop = crate::ops::Stop::on_signals(
        worker.pipeline.templates.clone(),
        worker.pipeline.directory.clone(),
    );
    tracing::info!(source = %worker.source.describe(), transport = %worker.transport.describe(), "recoverydesk running");
    let store = worker.pipeline.store.clone();
    tokio::select! {
        result = worker.run_serving(stop.requested(), Some(queue)) => result?,
        _ = stop.overdue() => {
            // The pass in hand is stuck on the network: leave it as
            // a crash would, but with everything committed durable.
            // Its mail is marked by the next start (content hashes
            // turn the replay into no-ops).
            tracing::warn!("the pass in hand did not finish in time; stopping without it");
            store.flush()?;
        }
    }
    Ok(())
}

/// `once`: one pass, then a one-line summary.
async fn once(settings: Arc<Settings>) -> anyhow::Result<()> {
    // Connect when fetching, not before: a mailbox that cannot be
    // reached must not keep replies and reminders from going out.
    let mut worker = Worker::open(settings, false, false).await?;
    let report = worker.pass(crate::clock::now()).await?;
    println!(
        "handled {} message(s), {} error(s), {} case(s) with due timers; sent {}, deferred {}, failed {}, held {}",
        report.handled.len(), report.errors, report.timers, report.sent.sent, report.sent.deferred, report.sent.failed, report.sent.held
    );
    if let Some(e) = report.source_error {
        // The mailbox's own error decides the exit code (2 for a
        // config problem such as a wrong password).
        return Err(
            anyhow::Error::new(e).context("mail could not be fetched (timers and the outbox ran)")
        );
    }
    if report.sent.deferred + report.sent.held > 0 {
        bail!(
            "{} message(s) could not be sent yet; they stay queued",
            report.sent.deferred + report.sent.held
        );
    }
    Ok(())
}

/// `cases`: a view, or a change through the daemon or the store.
fn cases(settings: &Settings, shadow: bool, view: CasesView) -> anyhow::Result<()> {
    let query = match view {
        CasesView::List { filter } => Query::List {
            filter: filter.into(),
        },
        CasesView::Show { id, attachments } => {
            let id =
                CaseId::parse(&id).with_context(|| format!("{id} is not a case id (RD-XXXXXX)"))?;
            if attachments {
                Query::Attachments { id }
            } else {
                Query::Show { id }
            }
        }
        CasesView::Attachment { id, number } => {
            let id =
                CaseId::parse(&id).with_context(|| format!("{id} is not a case id (RD-XXXXXX)"))?;
            return attachment(settings, shadow, &Query::Attachment { id, number });
        }
        CasesView::Export { filter, .. } => Query::Export {
            filter: filter.into(),
        },
        CasesView::Audit => Query::Audit,
        change => return change_cases(settings, shadow, change),
    };
    report(settings, shadow, &query)
}

/// The real store, or with `--shadow` the one shadow mode writes.
fn store_path(settings: &Settings, shadow: bool) -> PathBuf {
    if shadow {
        settings.path(Path::new(crate::worker::SHADOW_STORE))
    } else {
        settings.store_path.clone()
    }
}

/// Answers a read-only view: from the running daemon over the admin
/// socket when there is one, else from the store itself.
fn report(settings: &Settings, shadow: bool, query: &Query) -> anyhow::Result<()> {
    let mut out = QuietStdout::default();
    if !shadow {
        let request = Request::Report {
            query: query.clone(),
        };
        if crate::admin::ask(&settings.admin_socket, &request, &mut out)?.is_some() {
            return Ok(());
        }
    }
    let store = open_store(&store_path(settings, shadow))?;
    let text = crate::report::answer(&store, query, crate::clock::now())?;
    out.write_all(text.as_bytes())?;
    Ok(())
}

/// `cases attachment`: the report's base64, decoded onto stdout.
fn attachment(settings: &Settings, shadow: bool, query: &Query) -> anyhow::Result<()> {
    use base64::Engine as _;
    let mut encoded = Vec::new();
    let asked = !shadow
        && crate::admin::ask(
            &settings.admin_socket,
            &Request::Report {
                query: query.clone(),
            },
            &mut encoded,
        )?
        .is_some();
    if !asked {
        let store = open_store(&store_path(settings, shadow))?;
        encoded = crate::report::answer(&store, query, crate::clock::now())?.into_bytes();
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim_ascii())
        .context("the attachment came back garbled")?;
    std::io::stdout().write_all(&bytes)?;
    Ok(())
}

/// `cases erase` and `cases purge`: through the running daemon (whose
/// worker runs them between passes) when there is one, else on the store.
fn change_cases(settings: &Settings, shadow: bool, view: CasesView) -> anyhow::Result<()> {
    if shadow {
        bail!("--shadow only reads; erase and purge work on the real store");
    }
    let by = operator();
    let request = match view {
        CasesView::Erase {
            address,
            case,
            reason,
            yes,
        } => {
            let target = match (address, case) {
                (Some(a), _) => crate::store::EraseTarget::Address(
                    crate::domain::EmailAddress::parse(&a)
                        .with_context(|| format!("--address: {a} is not an email address"))?
                        .as_str()
                        .to_lowercase(),
                ),
                (None, Some(id)) => crate::store::EraseTarget::Case(
                    CaseId::parse(&id)
                        .with_context(|| format!("{id} is not a case id (RD-XXXXXX)"))?,
                ),
                (None, None) => bail!("name --address or --case"),
            };
            Request::Erase {
                erase: crate::retention::Erase {
                    target,
                    reason,
                    by,
                    confirmed: yes,
                },
            }
        }
        CasesView::Purge => {
            let keep = settings.retention.ok_or_else(|| {
                Error::Config(
                    "retention.closed_after is not set: nothing is purged (see config/example.toml)"
                        .into(),
                )
            })?;
            Request::Purge {
                keep_for: keep.as_secs() as i64,
                by,
            }
        }
        _ => bail!("not a change"),
    };
    let mut out = QuietStdout::default();
    if crate::admin::ask(&settings.admin_socket, &request, &mut out)?.is_some() {
        return Ok(());
    }
    let store = open_store(&settings.store_path)?;
    let now = crate::clock::now();
    let text = match &request {
        Request::Erase { erase } => crate::retention::erase(&store, erase, now)?,
        Request::Purge { keep_for, by } => crate::retention::purge(&store, *keep_for, by, now)?,
        _ => String::new(),
    };
    out.write_all(text.as_bytes())?;
    Ok(())
}

/// Who runs the command, for the audit trail: the person behind sudo
/// rather than root when there is one.
fn operator() -> String {
    ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.trim().is_empty()))
        .map(|u| format!("operator {u}"))
        .unwrap_or_else(|| "operator".into())
}

/// Opens the store for a command, explaining the lock a daemon holds.
fn open_store(path: &Path) -> anyhow::Result<Store> {
    Store::open(path).map_err(|e| match e {
        Error::Store(e) if crate::store::lock_held(&e) => {
            anyhow::anyhow!(
                "{} is in use by a running recoverydesk and its admin socket does not answer \
                 (is [admin] enabled = false?)",
                path.display()
            )
        }
        other => other.into(),
    })
}

fn backup(settings: &Settings, file: &Path) -> anyhow::Result<()> {
    // Written beside the target first, so a failed backup never leaves a
    // truncated file under the name a restore would use.
    let partial = file.with_extension("partial");
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&partial)
            .with_context(|| format!("creating {}", partial.display()))?,
    );
    let via_daemon = crate::admin::ask(&settings.admin_socket, &Request::Backup, &mut out)?;
    if via_daemon.is_none() {
        let store = open_store(&settings.store_path)?;
        store.write_backup(&mut out)?;
    }
    out.into_inner()
        .map_err(|e| e.into_error())
        .and_then(|f| f.sync_all())
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, file).with_context(|| format!("naming {}", file.display()))?;
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {} ({size} bytes{})",
        file.display(),
        if via_daemon.is_some() {
            ", from the running daemon"
        } else {
            ""
        }
    );
    Ok(())
}

fn restore(settings: &Settings, file: &Path) -> anyhow::Result<()> {
    if std::os::unix::net::UnixStream::connect(&settings.admin_socket).is_ok() {
        bail!("a recoverydesk is running on this store; stop it before restoring");
    }
    let mut input =
        std::fs::File::open(file).with_context(|| format!("opening {}", file.display()))?;
    let path = settings.store_path.clone();
    let moved = Store::restore_backup(&path, &mut input)?;
    println!(
        "restored {} entries ({} bytes) into {}",
        moved.entries,
        moved.bytes,
        path.display()
    );
    Ok(())
}

/// Standard output that goes quiet once the reader has gone (`| head`):
/// the rest of the answer is dropped instead of failing the command.
#[derive(Default)]
struct QuietStdout {
    closed: bool,
}

impl std::io::Write for QuietStdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.closed {
            return Ok(buf.len());
        }
        match std::io::stdout().write(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(buf.len())
            }
            other => other,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match std::io::stdout().flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }
}

fn templates(config: Option<&Path>, action: TemplatesAction) -> anyhow::Result<()> {
    let configured_dir =
        || -> Option<PathBuf> { config.and_then(|c| Settings::load(c).ok())?.templates_dir };
    match action {
        TemplatesAction::Check { dir } => {
            let dir = dir.or_else(configured_dir);
            let report = crate::templates::check::check_dir(dir.as_deref());
            print!("{report}");
            if !report.is_ok() {
                bail!("template check failed");
            }
            Ok(())
        }
        TemplatesAction::Preview {
            name,
            sample,
            lang,
            eml,
            dir,
            case,
        } => {
            let dir = dir.or_else(configured_dir);
            let set = match &dir {
                Some(d) => crate::templates::TemplateSet::load_dir(d)?,
                None => crate::templates::TemplateSet::embedded()?,
            };
            let kind = crate::templates::TemplateKind::from_name(&name)
                .with_context(|| format!("no template kind named {name}"))?;
            let context = preview_context(config, &set, kind, &sample, case.as_deref())?;
            match eml {
                Some(path) => {
                    let bytes =
                        crate::templates::preview::eml_from_context(&set, kind, &lang, &context)?;
                    std::fs::write(&path, bytes)
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!("wrote {}", path.display());
                }
                None => {
                    let rendered = set.render(kind, &lang, &context)?;
                    print!(
                        "{}",
                        crate::templates::preview::format_preview(kind, &context, &rendered)
                    );
                }
            }
            Ok(())
        }
    }
}

/// The context a preview renders with: a stored case's (`--case`), else
/// the sample's with the configured instance (name, address, links, reply
/// addresses) when a config is given.
fn preview_context(
    config: Option<&Path>,
    set: &crate::templates::TemplateSet,
    kind: crate::templates::TemplateKind,
    sample: &str,
    case: Option<&str>,
) -> anyhow::Result<serde_json::Value> {
    let settings = match config {
        Some(path) => Some(Settings::load(path)?),
        None => None,
    };
    let Some(id) = case else {
        let mut context = crate::templates::preview::sample_context(kind, sample)?;
        if let Some(settings) = &settings {
            crate::templates::preview::use_instance(&mut context, settings);
        }
        return Ok(context);
    };
    let settings = settings.context("--case needs --config: the case is read from its store")?;
    let id = CaseId::parse(id).with_context(|| format!("{id} is not a case id (RD-XXXXXX)"))?;
    let mut answer = Vec::new();
    let request = Request::CaseRecord { id: id.clone() };
    let (case, position): (Case, usize) =
        if crate::admin::ask(&settings.admin_socket, &request, &mut answer)?.is_some() {
            serde_json::from_slice(&answer).context("the daemon's case record")?
        } else {
            let store = open_store(&settings.store_path)?;
            let case = store.case(&id)?.with_context(|| format!("no case {id}"))?;
            let position = store.queue_position(&case)?;
            (case, position)
        };
    Ok(crate::templates::preview::case_context(
        &settings,
        set,
        &case,
        kind,
        position,
        crate::clock::now(),
    ))
}

async fn demo(dir: &Path) -> anyhow::Result<()> {
    let secret = hex::encode(rand::random::<[u8; 24]>());
    crate::demo::create(dir, &secret)?;
    let settings = Arc::new(Settings::load(&dir.join("config.toml"))?);
    let mut worker = Worker::open(settings.clone(), true, false).await?;
    let now = crate::clock::now();
    worker.pass(now).await?;
    let store = worker.pipeline.store.clone();
    let key = settings.secret_key.expose().as_bytes().to_vec();
    let support = settings.support_address.clone();
    let pw = find_case(&store, "pwforgetter")?;
    let tfa = find_case(&store, "iineolineii")?;
    let pw_ack = pw
        .messages
        .iter()
        .find(|m| m.direction == Direction::Out && m.to.contains(&pw.requester))
        .context("no acknowledgement")?;
    let crate::config::Mailbox::Maildir(inbox) = &settings.source.mailbox else {
        bail!("the demo reads a maildir");
    };
    for (name, text) in crate::demo::follow_up_mail(
        &pw_ack.message_id,
        &reply_address(&support, &key, &pw.id, Role::Case),
        &reply_address(&support, &key, &tfa.id, Role::Challenge),
    ) {
        crate::source::maildir::deliver(inbox, text.as_bytes(), &name)?;
    }
    worker.pass(now + 60).await?;
    let tfa = find_case(&store, "iineolineii")?;
    let parent = tfa
        .messages
        .iter()
        .rev()
        .find(|m| m.direction == Direction::Out)
        .context("no outgoing mail")?;
    let (name, text) = crate::demo::staff_reply(
        &reply_address(&support, &key, &tfa.id, Role::Case),
        &parent.message_id,
    );
    crate::source::maildir::deliver(inbox, text.as_bytes(), &name)?;
    worker.pass(now + 120).await?;
    print_demo(&settings, &store, dir, inbox, &tfa.id, now + 120)
}

/// What the demo did: the case list, the reply files, and what to try next.
fn print_demo(
    settings: &Settings,
    store: &Store,
    dir: &Path,
    inbox: &Path,
    example: &CaseId,
    now: i64,
) -> anyhow::Result<()> {
    println!("Demo folder: {}\n", dir.display());
    let list = Query::List {
        filter: CaseFilter::default(),
    };
    print!("{}", crate::report::answer(store, &list, now)?);
    let crate::config::TransportSettings::File(outbox) = &settings.transport else {
        bail!("the demo writes its replies to files");
    };
    let mut files: Vec<_> = std::fs::read_dir(outbox)?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    println!(
        "\n{} replies written to {}/ (open them in a mail client), e.g.:",
        files.len(),
        outbox.display()
    );
    for f in files.iter().take(5) {
        println!("  {f}");
    }
    let cfg = dir.join("config.toml");
    println!("\nNext:");
    println!(
        "  recoverydesk --config {} cases show {example}",
        cfg.display()
    );
    println!(
        "  recoverydesk --config {} once        # process new mail dropped into {}/new",
        cfg.display(),
        inbox.display()
    );
    println!(
        "  recoverydesk --config {} run         # keep running until Ctrl-C",
        cfg.display()
    );
    Ok(())
}

fn find_case(store: &Store, username: &str) -> anyhow::Result<Case> {
    store
        .cases()?
        .into_iter()
        .find(|c| c.fields.username.as_deref() == Some(username) && c.state != CaseState::New)
        .with_context(|| format!("the demo case for {username} was not created"))
}
