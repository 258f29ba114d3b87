//! A request's text as a document: the form sections people paste
//! (`### PyPI Username` and its answer), the checkboxes, and the prose.
//!
//! Only headings whose title names a known field split the text, so a
//! `###` a requester types inside an answer stays part of that answer, and
//! the last section simply runs to the end of the text.

use once_cell::sync::Lazy;
use regex::Regex;

/// Which form field a section answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SectionKind {
    /// The account username.
    Username,
    /// Why access was lost.
    Reason,
    /// Whether the linked address still works.
    EmailAccess,
    /// The Code of Conduct checkbox.
    CodeOfConduct,
    /// The review-delay checkbox.
    Acknowledgement,
    /// Packages or project URLs owned.
    Projects,
    /// The recovery-codes checkbox of the 2024 form: its tick says nothing
    /// about why access was lost, so it must not run into the reason.
    RecoveryCodes,
    /// Any other known heading (additional information, …): prose.
    Other,
}

/// One form section and its answer.
#[derive(Debug, Clone)]
pub(super) struct Section {
    /// What the heading asked.
    pub kind: SectionKind,
    /// The answer, without "_No response_" placeholders and tick lines.
    pub answer: String,
}

/// One checkbox line.
#[derive(Debug, Clone)]
pub(super) struct TickLine {
    /// `[x]` or `[X]`.
    pub checked: bool,
    /// The text after the box.
    pub label: String,
    /// The section it sits in, when it sits in one.
    pub section: Option<SectionKind>,
}

/// A request's text, split for reading.
#[derive(Debug, Clone, Default)]
pub(super) struct Document {
    /// The whole (normalised) text.
    pub text: String,
    /// Known form sections, in order.
    pub sections: Vec<Section>,
    /// Checkbox lines, in order.
    pub ticks: Vec<TickLine>,
    /// What the requester wrote in their own words: reason answers first,
    /// then everything outside username/project answers, ticks and headings.
    pub prose: String,
}

static HEADING: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"^\s{0,3}(?:#{1,6}\s*(.+?)\s*#*|\*\*(.+?)\*\*\s*:?|__(.+?)__\s*:?)\s*$")
        .expect("valid regex")
});

static TICK: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"^\s*(?:[-*+]\s*)?\[([ xX✓✔])\]\s*(.*)$").expect("valid regex"));

static NO_RESPONSE: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"(?i)^\s*_?(?:no response|n/?a|none|-)_?\s*$").expect("valid regex"));

static OWN_SUBJECT: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^\s*(?:subject|betreff|asunto|assunto|objet|sujet|тема|主题|主旨)\s*:\s*(.+)$")
        .expect("valid regex")
});

/// A letter that carries its own "Subject:" line at the top: the line is
/// read as subject and removed from the body, so it is not mistaken for
/// prose or a quoted header.
pub(super) fn split_own_subject(text: &str) -> (Option<String>, String) {
    // The subject may sit under the letter's other header lines ("From:
    // me", "To: support", "Date: …"), which stay in the body.
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() || LETTER_HEADER.is_match(line) {
            continue;
        }
        if let Some(caps) = OWN_SUBJECT.captures(line) {
            let subject = caps.get(1).map(|m| m.as_str().trim().to_string());
            let rest: Vec<&str> = text
                .lines()
                .enumerate()
                .filter(|&(n, _)| n != i)
                .map(|(_, l)| l)
                .collect();
            return (subject, rest.join("\n"));
        }
        break;
    }
    (None, text.to_string())
}

static LETTER_HEADER: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^\s*(?:from|to|cc|date|sent|von|an|datum|de|para|à|fecha|от|кому|дата|发件人|收件人|日期)\s*:")
        .expect("valid regex")
});

/// A line that must stay on its own: a list item or tick, a quote, a
/// table row, a code fence, a heading, or a `Label: value` line.
static OWN_LINE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"^\s*(?:[-*+•]\s|\d{1,2}[.)]\s|\[[ xX✓✔]\]|>|\||```|~~~|#|\*\*|__)|^\s*[\p{L}][\p{L}\p{N} ._-]{0,30}\s*[:=：]\s*\S")
        .expect("valid regex")
});

/// A `Label: value` line with a short value ("Username: jodoe"): what
/// follows it is another field, not the rest of its sentence.
static SHORT_LABEL: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"^\s*(?:[-*]\s*)?[\p{L}][\p{L}\p{N} ._-]{0,30}\s*[:=：]\s*(?:\S+\s*){0,3}$")
        .expect("valid regex")
});

/// Joins the soft line breaks of wrapped paragraphs ("I agree to the⏎Code
/// of Conduct"), so phrase rules see a sentence as one line. A break stays
/// where the line ends a sentence, where either line is a list item, tick,
/// quote, heading, form label or fence, and everywhere inside a fence.
pub(super) fn unwrap(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_fence = false;
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        out.push_str(line);
        if line.trim_start().starts_with("```") || line.trim_start().starts_with("~~~") {
            in_fence = !in_fence;
        }
        let Some(next) = lines.peek() else {
            break;
        };
        let soft = !in_fence
            && !line.trim().is_empty()
            && !next.trim().is_empty()
            && !line
                .trim_end()
                .ends_with(['.', '!', '?', ':', ';', '。', '！', '？', '：'])
            && !OWN_LINE.is_match(next)
            && !SHORT_LABEL.is_match(line)
            && !line.trim_start().starts_with(['#', '>', '|'])
            && heading_kind(line).is_none();
        out.push(if soft { ' ' } else { '\n' });
    }
    out
}

/// The field a heading's title names, if any.
pub(super) fn classify(title: &str) -> Option<SectionKind> {
    let t = title.to_lowercase();
    let has = |words: &[&str]| words.iter().any(|w| t.contains(w));
    // The order matters: "Recovery codes acknowledgement" is the codes box,
    // "Email address" alone is no email-access section.
    if has(CONDUCT_WORDS) {
        return Some(SectionKind::CodeOfConduct);
    }
    if has(CODES_WORDS) && t.split_whitespace().count() <= 4 {
        return Some(SectionKind::RecoveryCodes);
    }
    if has(ACK_WORDS) {
        return Some(SectionKind::Acknowledgement);
    }
    if has(MAIL_WORDS) && has(ACCESS_WORDS) {
        return Some(SectionKind::EmailAccess);
    }
    [
        (USERNAME_WORDS, SectionKind::Username),
        (REASON_WORDS, SectionKind::Reason),
        (PROJECT_WORDS, SectionKind::Projects),
        (OTHER_WORDS, SectionKind::Other),
    ]
    .into_iter()
    .find(|(words, _)| has(words))
    .map(|(_, kind)| kind)
}

/// Headings of the Code of Conduct section.
const CONDUCT_WORDS: &[&str] = &[
    "code of conduct",
    "conducta",
    "conduta",
    "conduite",
    "verhaltenskodex",
    "кодекс",
    "行为准则",
];
/// Headings of the recovery-codes box (short ones: a sentence about codes is no heading).
const CODES_WORDS: &[&str] = &["recovery code", "backup code"];
/// Headings of the processing-time acknowledgement.
const ACK_WORDS: &[&str] = &[
    "acknowledg",
    "reconocimiento",
    "reconhecimento",
    "bestätigung",
    "confirmation",
    "подтвержд",
    "确认",
];
/// Words for the mailbox in an email-access heading.
const MAIL_WORDS: &[&str] = &[
    "email",
    "e-mail",
    "mail address",
    "correo",
    "adresse",
    "почт",
    "邮箱",
    "电子邮件",
];
/// Words for having access in an email-access heading.
const ACCESS_WORDS: &[&str] = &[
    "access",
    "acceso",
    "acesso",
    "accès",
    "zugriff",
    "zugang",
    "доступ",
    "访问",
    "control",
];
/// Headings of the username field.
const USERNAME_WORDS: &[&str] = &[
    "username",
    "user name",
    "account name",
    "usuario",
    "usuário",
    "utilisateur",
    "benutzername",
    "пользовател",
    "логин",
    "用户名",
];
/// Headings of the reason field.
const REASON_WORDS: &[&str] = &[
    "reason",
    "what happened",
    "motivo",
    "raison",
    "grund",
    "причина",
    "原因",
    "describe the problem",
];
/// Headings of the projects field.
const PROJECT_WORDS: &[&str] = &[
    "project",
    "package",
    "proyecto",
    "paquete",
    "projet",
    "paket",
    "pacote",
    "проект",
    "项目",
];
/// Headings of free extra information.
const OTHER_WORDS: &[&str] = &[
    "additional",
    "information",
    "details",
    "context",
    "anything else",
    "verification",
    "proof",
    "notes",
    "información",
    "informações",
    "informations",
    "informationen",
    "информация",
];

/// Words a form label never holds but a short answer does ("Lost access to
/// email address" answers the reason; it is no "Email access" heading).
static STATEMENT: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)\b(?:lost|lose|loss|losing|forgot|forgotten|no|not|never|cannot|can't|don't|i|my|perdí|perdi|perdu|verloren|потерял\w*)\b")
        .expect("valid regex")
});

/// `Reason: lost my phone` on its own line (the 2020 template and free
/// text): a reason section whose answer starts on the same line.
static REASON_LABEL: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^\s*(?:[-*]\s*)?(?:\*\*)?(?:reason(?:\s+for\s+(?:the\s+)?request)?|motivo|raison|grund|причина|原因)(?:\*\*)?\s*[:：]\s*(.*)$")
        .expect("valid regex")
});

/// A line that is a known heading: `### …`, `**…**`, or a bare short label
/// ("PyPI Username") left when an HTML form was rendered to text.
fn heading_kind(line: &str) -> Option<SectionKind> {
    if let Some(caps) = HEADING.captures(line) {
        let title = caps
            .get(1)
            .or_else(|| caps.get(2))
            .or_else(|| caps.get(3))
            .map_or("", |m| m.as_str());
        return classify(title);
    }
    let bare = line.trim().trim_end_matches(':').trim();
    // "Username: jodoe" is a label with its value, not a heading.
    if bare.contains([':', '=', '`', '@']) {
        return None;
    }
    let words = bare.split_whitespace().count();
    let sentence = bare.contains(['.', ',', '!', '?', '。', '，', '！', '？'])
        || bare.contains(" my ")
        || bare.contains(" is ")
        || STATEMENT.is_match(bare);
    if (1..=5).contains(&words) && bare.chars().count() <= 40 && !sentence {
        // Only the labels a form actually prints, never prose like "code of
        // conduct" inside a sentence: a bare line must be nothing but it.
        let kind = classify(bare)?;
        if matches!(kind, SectionKind::Other) {
            return None;
        }
        return Some(kind);
    }
    None
}

impl Document {
    /// Splits `text` into sections, ticks and prose.
    pub(super) fn parse(text: &str) -> Document {
        let mut doc = Document {
            text: text.to_string(),
            ..Document::default()
        };
        let mut current: Option<usize> = None;
        let mut outside: Vec<&str> = Vec::new();
        let mut in_fence = false;
        for line in text.lines() {
            if line.trim_start().starts_with("```") {
                in_fence = !in_fence;
            }
            if !in_fence {
                // A bare line under a still empty heading of its own kind is
                // the answer: the username "nousername" is no second heading.
                let answer_of_current = current.is_some_and(|i| {
                    let s = &doc.sections[i];
                    s.answer.trim().is_empty()
                        && !HEADING.is_match(line)
                        && heading_kind(line) == Some(s.kind)
                });
                if let Some(kind) = heading_kind(line).filter(|_| !answer_of_current) {
                    doc.sections.push(Section {
                        kind,
                        answer: String::new(),
                    });
                    current = Some(doc.sections.len() - 1);
                    continue;
                }
                if let Some(caps) = REASON_LABEL.captures(line) {
                    let rest = caps.get(1).map_or("", |m| m.as_str());
                    doc.sections.push(Section {
                        kind: SectionKind::Reason,
                        answer: format!("{rest}\n"),
                    });
                    current = Some(doc.sections.len() - 1);
                    continue;
                }
                if let Some(caps) = TICK.captures(line) {
                    let checked = caps.get(1).is_some_and(|m| m.as_str() != " ");
                    let label = caps.get(2).map_or("", |m| m.as_str()).trim().to_string();
                    let section = current.map(|i| doc.sections[i].kind);
                    doc.ticks.push(TickLine {
                        checked,
                        label,
                        section,
                    });
                    continue;
                }
            }
            if NO_RESPONSE.is_match(line) && current.is_some() {
                continue;
            }
            match current {
                Some(i) => {
                    let answer = &mut doc.sections[i].answer;
                    answer.push_str(line);
                    answer.push('\n');
                }
                None => outside.push(line),
            }
        }
        doc.prose = prose(&doc.sections, &outside);
        doc
    }

    /// Answers of every section of `kind`, joined.
    pub(super) fn answers(&self, kind: SectionKind) -> String {
        self.sections
            .iter()
            .filter(|s| s.kind == kind)
            .map(|s| s.answer.as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// True when the text contains a pasted form.
    pub(super) fn is_form(&self) -> bool {
        !self.sections.is_empty() || !self.ticks.is_empty()
    }
}

/// The prose the free-text rules read: the reason answers first (people
/// name their reason there), then the other free answers, then the text
/// outside any section. Usernames, projects and the codes box are fields,
/// not prose.
fn prose(sections: &[Section], outside: &[&str]) -> String {
    let mut prose = String::new();
    for s in sections.iter().filter(|s| s.kind == SectionKind::Reason) {
        prose.push_str(&s.answer);
        prose.push('\n');
    }
    for s in sections {
        if !matches!(
            s.kind,
            SectionKind::Reason
                | SectionKind::Username
                | SectionKind::Projects
                | SectionKind::RecoveryCodes
        ) {
            prose.push_str(&s.answer);
            prose.push('\n');
        }
    }
    prose.push_str(&outside.join("\n"));
    prose
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrapped_paragraphs_are_joined_and_structure_stays_apart() {
        assert_eq!(
            unwrap("I agree to the\nCode of Conduct and I understand\nthis could take a while."),
            "I agree to the Code of Conduct and I understand this could take a while."
        );
        for kept in [
            "### PyPI Username\njodoe",
            "I lost my phone.\nMy codes are gone.",
            "Hello\n\nWorld",
            "Some text\n- [x] I agree\n- [ ] I do not",
            "Some text\n> quoted",
            "Username: jodoe\nI lost my phone",
            "Username: jodoe\nEmail: jo@example.org",
            "```\nline one\nline two\n```",
            "PyPI Username\njodoe",
        ] {
            assert_eq!(unwrap(kept), kept, "{kept}");
        }
    }

    #[test]
    fn a_hash_heading_inside_an_answer_stays_in_the_answer() {
        let doc = Document::parse("### Reason for request\n\nlost phone\n### not a heading, my words\nmore\n### Code of Conduct\n- [x] agree");
        assert_eq!(doc.sections.len(), 2);
        assert!(doc.sections[0].answer.contains("not a heading"));
        assert_eq!(doc.ticks.len(), 1);
        assert_eq!(doc.ticks[0].section, Some(SectionKind::CodeOfConduct));
    }

    #[test]
    fn the_last_section_runs_to_the_end() {
        let doc = Document::parse("## PyPI Username\njodoe\n## Reason\nlost phone\nand codes");
        assert_eq!(
            doc.answers(SectionKind::Reason).trim(),
            "lost phone\nand codes"
        );
    }

    #[test]
    fn bare_labels_from_rendered_html_forms_are_headings() {
        let doc =
            Document::parse("PyPI Username\n\njodoe\n\nReason for request\n\nI lost my phone.");
        assert_eq!(doc.answers(SectionKind::Username).trim(), "jodoe");
    }

    #[test]
    fn an_own_subject_under_letter_headers_is_found() {
        let (subject, body) = split_own_subject("From: Jo\nTo: Desk\nSubject: Lost 2FA\n\nHello");
        assert_eq!(subject.as_deref(), Some("Lost 2FA"));
        assert_eq!(body, "From: Jo\nTo: Desk\n\nHello");
    }

    #[test]
    fn an_own_subject_line_is_split_off() {
        let (subject, body) = split_own_subject("\nSubject: Lost 2FA for jodoe\nHello");
        assert_eq!(subject.as_deref(), Some("Lost 2FA for jodoe"));
        assert_eq!(body.trim(), "Hello");
    }
}
