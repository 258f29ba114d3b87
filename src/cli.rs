//! Operator commands. The only module (with `main`) that knows argv and
//! exit codes: 0 success, 1 failure at run time, 2 bad configuration.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::{Parser, Subcommand};

use crate::case::{Case, CaseState};
use crate::config::Settings;
use crate::error::Error;
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
}

/// `cases` views.
#[derive(Debug, Subcommand)]
pub enum CasesView {
    /// One line per case.
    List,
    /// One case with its messages and log.
    Show {
        /// Case id, e.g. RD-7K3M9Q.
        id: String,
    },
    /// Every case as JSON lines.
    Export {
        /// JSON lines (the only format).
        #[arg(long)]
        json: bool,
    },
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
    },
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
        Command::Run { dry_run } => {
            let settings = load(cli.config.as_deref())?;
            let mut worker = Worker::open(settings.clone(), false, dry_run).await?;
            let _metrics = crate::ops::start_metrics(&settings, &worker.pipeline).await?;
            let _watch = crate::ops::watch_templates(&settings, &worker.pipeline)?;
            // Signal handlers exist before anything else can take time.
            let shutdown = crate::ops::shutdown_signal(worker.pipeline.templates.clone());
            tracing::info!(source = %worker.source.describe(), transport = %worker.transport.describe(), "recoverydesk running");
            worker.run(shutdown).await?;
            Ok(())
        }
        Command::Once => {
            let settings = load(cli.config.as_deref())?;
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
                return Err(anyhow::Error::new(e)
                    .context("mail could not be fetched (timers and the outbox ran)"));
            }
            if report.sent.deferred + report.sent.held > 0 {
                bail!(
                    "{} message(s) could not be sent yet; they stay queued",
                    report.sent.deferred + report.sent.held
                );
            }
            Ok(())
        }
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
        Command::Cases { view } => {
            let settings = load(cli.config.as_deref())?;
            let store = Store::open(&settings.path(&settings.raw.store.path))?;
            crate::report::cases(&store, view, crate::clock::now())
        }
        Command::Followups { within } => {
            let settings = load(cli.config.as_deref())?;
            let store = Store::open(&settings.path(&settings.raw.store.path))?;
            let within =
                humantime::parse_duration(&within).context("--within: write e.g. 7d or 36h")?;
            crate::report::followups(&store, crate::clock::now(), within.as_secs() as i64)
        }
        Command::Templates { action } => templates(cli.config.as_deref(), action),
        Command::Doctor { staff_probe: true } => {
            crate::staff_probe::doctor(cli.config.as_deref()).await
        }
        Command::Doctor { staff_probe: false } => crate::ops::doctor(cli.config.as_deref()).await,
    }
}

fn templates(config: Option<&Path>, action: TemplatesAction) -> anyhow::Result<()> {
    let configured_dir = || -> Option<PathBuf> {
        let settings = config.and_then(|c| Settings::load(c).ok())?;
        settings
            .raw
            .templates
            .dir
            .as_ref()
            .map(|d| settings.path(d))
    };
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
        } => {
            let dir = dir.or_else(configured_dir);
            let set = match &dir {
                Some(d) => crate::templates::TemplateSet::load_dir(d)?,
                None => crate::templates::TemplateSet::embedded()?,
            };
            let kind = crate::templates::TemplateKind::from_name(&name)
                .with_context(|| format!("no template kind named {name}"))?;
            match eml {
                Some(path) => {
                    let bytes = crate::templates::preview::preview_eml(&set, kind, &sample, &lang)?;
                    std::fs::write(&path, bytes)
                        .with_context(|| format!("writing {}", path.display()))?;
                    println!("wrote {}", path.display());
                }
                None => {
                    let context = crate::templates::preview::sample_context(kind, &sample)?;
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
        .find(|m| m.direction == "out" && m.to.contains(&pw.requester))
        .context("no acknowledgement")?;
    let inbox = settings.path(
        &settings
            .raw
            .source
            .maildir
            .as_ref()
            .context("demo uses a maildir")?
            .path,
    );
    for (name, text) in crate::demo::follow_up_mail(
        &pw_ack.message_id,
        &reply_address(&support, &key, &pw.id, Role::Case),
        &reply_address(&support, &key, &tfa.id, Role::Challenge),
    ) {
        crate::source::maildir::deliver(&inbox, text.as_bytes(), &name)?;
    }
    worker.pass(now + 60).await?;
    let tfa = find_case(&store, "iineolineii")?;
    let parent = tfa
        .messages
        .iter()
        .rev()
        .find(|m| m.direction == "out")
        .context("no outgoing mail")?;
    let (name, text) = crate::demo::staff_reply(
        &reply_address(&support, &key, &tfa.id, Role::Case),
        &parent.message_id,
    );
    crate::source::maildir::deliver(&inbox, text.as_bytes(), &name)?;
    worker.pass(now + 120).await?;
    println!("Demo folder: {}\n", dir.display());
    crate::report::cases(&store, CasesView::List, now + 120)?;
    let outbox = settings.path(
        &settings
            .raw
            .transport
            .file
            .as_ref()
            .context("demo uses files")?
            .dir,
    );
    let mut files: Vec<_> = std::fs::read_dir(&outbox)?
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
        "  recoverydesk --config {} cases show {}",
        cfg.display(),
        tfa.id
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
