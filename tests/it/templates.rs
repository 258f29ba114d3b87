//! The shipped template set end to end: every kind renders in every language
//! for every sample; a broken template is named by file and line; a failed
//! reload keeps the old set; a preview `.eml` parses; and `challenge_sent`
//! never reveals whether an account exists.

use std::path::{Path, PathBuf};

use mail_parser::MimeHeaders;
use recoverydesk::templates::check::check_dir;
use recoverydesk::templates::preview::{preview, preview_eml};
use recoverydesk::templates::{samples, SharedTemplates, TemplateKind, TemplateSet};

fn shipped_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("templates")
}

/// Copies the shipped folder so a test can break it without touching it.
fn copy_of_shipped() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    for language in std::fs::read_dir(shipped_dir()).unwrap().flatten() {
        if !language.path().is_dir() {
            continue;
        }
        let target = tmp.path().join(language.file_name());
        std::fs::create_dir_all(&target).unwrap();
        for file in std::fs::read_dir(language.path()).unwrap().flatten() {
            std::fs::copy(file.path(), target.join(file.file_name())).unwrap();
        }
    }
    tmp
}

#[test]
fn every_kind_renders_in_every_language_for_every_sample() {
    let set = TemplateSet::embedded().unwrap();
    let languages = set.languages();
    assert_eq!(languages, vec!["en".to_string(), "es".to_string()]);
    let mut renders = 0;
    for language in &languages {
        for kind in TemplateKind::ALL {
            for (name, context) in samples::contexts_for(*kind) {
                let rendered = set
                    .render(*kind, language, &context)
                    .unwrap_or_else(|e| panic!("{kind} {language} {name}: {e}"));
                assert!(!rendered.subject.is_empty() && !rendered.subject.contains('\n'));
                let id = context["case"]["id"].as_str().unwrap();
                if *kind != TemplateKind::Digest {
                    assert!(
                        rendered.subject.contains(id),
                        "{kind} {language} {name}: {}",
                        rendered.subject
                    );
                }
                if !kind.is_staff_facing() {
                    assert!(rendered
                        .subject
                        .contains(context["case"]["subject_tag"].as_str().unwrap()));
                }
                renders += 1;
            }
        }
    }
    assert_eq!(
        renders,
        2 * TemplateKind::ALL.len() * (samples::NAMES.len() + 1)
    );
}

#[test]
fn shipped_folder_and_embedded_set_pass_the_check() {
    for report in [check_dir(None), check_dir(Some(&shipped_dir()))] {
        assert!(report.is_ok(), "{report}");
        assert_eq!(report.warnings().count(), 0, "{report}");
    }
}

#[test]
fn spanish_is_spanish_and_the_challenge_carries_the_code() {
    let set = TemplateSet::embedded().unwrap();
    let ack = preview(&set, TemplateKind::Acknowledgement, "non_english", "es").unwrap();
    assert!(ack.text.contains("Hemos recibido"), "{}", ack.text);
    assert!(ack.html.unwrap().contains("lang=\"es\""));
    let challenge = preview(&set, TemplateKind::Challenge, "seed_2fa", "en").unwrap();
    assert!(challenge.text.contains("K7QF-3MZP"));
    assert!(challenge.text.contains("j***@e***.org"));
    assert!(!challenge.text.contains(samples::SAMPLE_REQUESTER));
}

#[test]
fn broken_template_is_named_with_file_and_line() {
    let dir = copy_of_shipped();
    let broken = dir.path().join("en/acknowledgement.txt.tera");
    let mut text = std::fs::read_to_string(&broken).unwrap();
    text.push_str("\n{% if case.id %}never closed\n");
    std::fs::write(&broken, text.as_bytes()).unwrap();
    let report = check_dir(Some(dir.path()));
    assert!(!report.is_ok());
    let first = report.errors().next().unwrap();
    assert!(
        first.problem.file.ends_with("en/acknowledgement.txt.tera"),
        "{report}"
    );
    assert!(first.problem.line.is_some(), "{report}");

    // An unknown variable names the file, the line of its first use, and
    // the variable.
    let dir = copy_of_shipped();
    let file = dir.path().join("es/reminder.txt.tera");
    let original = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, format!("Hola {{{{ case.usrname }}}}\n{original}")).unwrap();
    let report = check_dir(Some(dir.path()));
    let finding = report
        .errors()
        .next()
        .unwrap_or_else(|| panic!("no error: {report}"));
    assert!(
        finding.problem.file.ends_with("es/reminder.txt.tera"),
        "{report}"
    );
    assert_eq!(finding.problem.line, Some(1));
    assert_eq!(finding.problem.variable.as_deref(), Some("case.usrname"));
    let line = finding.to_string();
    assert!(
        line.contains("reminder.txt.tera:1") && line.contains("case.usrname"),
        "{line}"
    );
}

#[test]
fn errors_inside_partials_name_the_partial() {
    let dir = copy_of_shipped();
    let partial = dir.path().join("en/_queue.txt.tera");
    std::fs::write(&partial, "ok\n{{ case.queue_pos }}\n").unwrap();
    let report = check_dir(Some(dir.path()));
    let finding = report.errors().next().unwrap();
    assert!(
        finding.problem.file.ends_with("en/_queue.txt.tera"),
        "{report}"
    );
    assert_eq!(finding.problem.line, Some(2));
}

#[test]
fn missing_partial_points_at_the_include() {
    let dir = copy_of_shipped();
    let file = dir.path().join("en/closed.txt.tera");
    let original = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        format!("{original}\n{{% include \"_nope.txt.tera\" %}}\n"),
    )
    .unwrap();
    let report = check_dir(Some(dir.path()));
    let finding = report
        .errors()
        .next()
        .unwrap_or_else(|| panic!("no error: {report}"));
    assert!(
        finding.problem.file.ends_with("en/closed.txt.tera"),
        "{report}"
    );
    assert_eq!(
        finding.problem.line,
        Some(original.lines().count() + 2),
        "{report}"
    );
    assert!(
        finding.problem.message.contains("_nope.txt.tera"),
        "{report}"
    );
}

#[test]
fn failed_reload_keeps_the_old_set() {
    let dir = copy_of_shipped();
    let shared = SharedTemplates::from_dir(dir.path()).unwrap();
    let context = samples::for_kind(
        &samples::scenario("seed_2fa").unwrap(),
        TemplateKind::Acknowledgement,
    );
    let before = shared
        .current()
        .render(TemplateKind::Acknowledgement, "en", &context)
        .unwrap();

    // A syntax error: refused, and the old set still renders.
    std::fs::write(
        dir.path().join("en/acknowledgement.subject.tera"),
        "{{ case.subject_tag ",
    )
    .unwrap();
    let error = shared.reload().unwrap_err().to_string();
    assert!(error.contains("acknowledgement.subject.tera:1"), "{error}");
    let after = shared
        .current()
        .render(TemplateKind::Acknowledgement, "en", &context)
        .unwrap();
    assert_eq!(before, after);

    // Compiles, but breaks a rule (no case id in the subject): also refused.
    std::fs::write(dir.path().join("en/acknowledgement.subject.tera"), "Hello").unwrap();
    assert!(shared.reload().is_err());
    assert_eq!(
        shared
            .current()
            .render(TemplateKind::Acknowledgement, "en", &context)
            .unwrap(),
        before
    );

    // Fixed: the new set is taken.
    std::fs::write(
        dir.path().join("en/acknowledgement.subject.tera"),
        "{{ case.subject_tag }} Got it",
    )
    .unwrap();
    shared.reload().unwrap();
    let fixed = shared
        .current()
        .render(TemplateKind::Acknowledgement, "en", &context)
        .unwrap();
    assert_eq!(fixed.subject, "[Case RD-7K3M9Q] Got it");
}

#[test]
fn watcher_reloads_after_a_change() {
    let dir = copy_of_shipped();
    let shared = SharedTemplates::from_dir(dir.path()).unwrap();
    let _watcher = recoverydesk::templates::watch(shared.clone(), dir.path()).unwrap();
    let context = samples::for_kind(
        &samples::scenario("seed_2fa").unwrap(),
        TemplateKind::Duplicate,
    );
    std::fs::write(
        dir.path().join("en/duplicate.subject.tera"),
        "{{ case.subject_tag }} Changed",
    )
    .unwrap();
    // A liveness bound, not a speed claim: on a loaded 2-core machine the
    // debounce and the reload of every template took over 10 s once.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let subject = shared
            .current()
            .render(TemplateKind::Duplicate, "en", &context)
            .unwrap()
            .subject;
        if subject.ends_with("Changed") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no reload; subject still {subject}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn preview_eml_parses_with_text_and_html() {
    let set = TemplateSet::embedded().unwrap();
    for (kind, lang) in [
        (TemplateKind::Acknowledgement, "en"),
        (TemplateKind::Challenge, "es"),
    ] {
        let eml = preview_eml(&set, kind, "seed_2fa", lang).unwrap();
        let message = mail_parser::MessageParser::default()
            .parse(&eml)
            .expect("parses");
        assert!(message.subject().unwrap().contains("[Case RD-7K3M9Q]"));
        assert_eq!(message.text_body.len(), 1);
        assert_eq!(message.html_body.len(), 1);
        let text = message.body_text(0).unwrap();
        let html = message.body_html(0).unwrap();
        assert!(text.contains("RD-7K3M9Q"));
        assert!(html.contains("<html"), "{html}");
        assert!(message.header("Auto-Submitted").is_some());
        assert!(message.reply_to().is_some());
    }
    // A kind without HTML is a single text part.
    let eml = preview_eml(&set, TemplateKind::StaffNewCase, "seed_2fa", "en").unwrap();
    let message = mail_parser::MessageParser::default().parse(&eml).unwrap();
    let content_type = message.content_type().unwrap();
    assert_eq!(
        (content_type.ctype(), content_type.subtype()),
        ("text", Some("plain"))
    );
    assert!(message
        .body_text(0)
        .unwrap()
        .contains("new account recovery case"));
}

#[test]
fn challenge_sent_is_identical_for_known_and_unknown_accounts() {
    let set = TemplateSet::embedded().unwrap();
    let kind = TemplateKind::ChallengeSent;
    for language in set.languages() {
        let known = preview(&set, kind, "challenge_known_account", &language).unwrap();
        let unknown = preview(&set, kind, "challenge_unknown_account", &language).unwrap();
        assert_eq!(known, unknown, "{language}");
        assert!(known.text.contains("RD-7K3M9Q"));
        assert!(
            !known.text.contains("K7QF-3MZP"),
            "no code to the requester"
        );
    }
}

#[test]
fn relay_shows_staff_name_only_when_set() {
    let set = TemplateSet::embedded().unwrap();
    let with = preview(&set, TemplateKind::StaffRelay, "seed_2fa", "en").unwrap();
    assert!(with.text.contains("\nDana\n"), "{}", with.text);
    let without = preview(&set, TemplateKind::StaffRelay, "missing_everything", "en").unwrap();
    assert!(!without.text.contains("Dana"));
    let hostile = preview(&set, TemplateKind::StaffRelay, "hostile_input", "en").unwrap();
    assert!(hostile
        .html
        .unwrap()
        .contains("&lt;b&gt;bold?&lt;&#x2F;b&gt;"));
}
