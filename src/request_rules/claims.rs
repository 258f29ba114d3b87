//! Claims and agreements: still controls the linked address, Code of
//! Conduct, review delay; and the two message shapes that are not requests
//! at all ("solved", "any update?").
//!
//! Ticks are weak evidence; the requester's own words are stronger, in
//! both directions: "I do not agree" beats `- [x]`, "I understand it takes
//! time" beats `- [ ]`.

use once_cell::sync::Lazy;
use regex::Regex;

use super::sections::{Document, SectionKind};
use crate::request::{Claim, Reason, Tick};

/// Clause boundaries for the email-access reading: a sentence may say
/// "I lost my phone, but I still have access to my email".
static CLAUSE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(
        r"(?i)[.!?;\n。！？]+|,?\s+\b(?:but|however|although|though|pero|mas|aber|но|但是?)\b",
    )
    .expect("valid regex")
});

/// A clause about reading the linked mailbox: an access word whose object
/// is the mail ("access to my email", "Zugriff auf meine E-Mail", "доступ к
/// почте"), the mail as subject of an access phrase ("email access: yes",
/// "my email still works"), or receiving mail. "I can't access my account
/// with my email" is about the account, and does not count: a wrong "no"
/// would skip the challenge and send the case to slower manual review.
static MAIL_ACCESS: Lazy<Regex> = Lazy::new(|| {
    const MAIL: &str = r"(?:e-?mails?|\bmails?\b|mailbox|inbox|(?:linked|registered|associated|e-?mail|the|that|this|same)\s+address|address\s+on\s+(?:file|the\s+account)|correo|courriel|adresse|e-?mail-adresse|postfach|почт\w*|ящик\w*)";
    const ACCESS: &str = r"(?:access|acceso|acesso|accès|zugriff|zugang|доступ\w*)";
    Regex::new(&format!(
        r"(?i){ACCESS}\s+(?:\S+\s+){{0,3}}?{MAIL}|{MAIL}\s+(?:\S+\s+){{0,3}}?{ACCESS}|(?:read|reading|check|checking)\s+(?:\S+\s+){{0,3}}?(?:e-?mails?|\bmails?\b|messages)|(?:log|sign)\s*(?:in|into)\s+(?:to\s+)?(?:my\s+|the\s+)?{MAIL}|(?:still\s+)?(?:use|have|own|control)\s+(?:my\s+|the\s+|that\s+)?(?:same\s+)?{MAIL}|{MAIL}\s+(?:is\s+fine|works|still\s+works|is\s+ok|is\s+still\s+mine)|(?:访问|登录|登入)\S{{0,4}}(?:邮箱|郵箱|电子邮件)|(?:邮箱|郵箱|电子邮件)\S{{0,8}}(?:访问|登录|收到|无法|不能)"
    ))
    .expect("valid regex")
});

/// A looser reading that may only ever conclude "yes": access to a list of
/// things that ends in the linked address ("I still have access to the
/// username, the password and the linked email address", as the seed
/// request says). It never concludes "no", so it cannot send a case to
/// manual review by mistake.
static MAIL_ACCESS_LOOSE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)\b(?:have|still\s+have|got)\s+access\s+to\b[^.;!?\n]{0,80}?\b(?:(?:linked|registered|associated|account'?s?)\s+)?e-?mail(?:\s+address)?\b")
        .expect("valid regex")
});

static NEGATION: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)\b(?:not|no|never|cannot|without|unable|lost|deleted|expired|closed|gone)\b|n't|no\s+longer|ya\s+no|\bsin\b|não|\bsem\b|perdi|plus\s+accès|\bpas\b|kein\w*|nicht|нет|не\s|потерял|无法|不能|没有|丢失|失效|不再")
        .expect("valid regex")
});

static YES_NO: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)^\s*(?:[-*]\s*)?(yes|yep|sí|si|sim|oui|ja|да|是|有|no|nope|não|nao|non|nein|нет|否|没有)\b")
        .expect("valid regex")
});

/// Mail that only reaches a readable mailbox: receiving, seeing or opening
/// a reset, confirmation or notification mail (or its link) implies the
/// requester reads the linked address, as the corpus labels read it
/// ("I received an email saying that address is not verified").
static MAIL_RECEIVED: Lazy<Regex> = Lazy::new(|| {
    const GOT: &str = r"(?:receiv\w*|got|gotten|get|getting|saw|see|seen|open\w*|click\w*|recib\w*|recebi\w*|recebo|reçu|reçois|erhalt\w*|bekomm\w*|bekam|получ\w*|收到)";
    const WHAT: &str = r"(?:e-?mails?|\bmails?\b|messages?|link|notification|correo|mensaje|e-?mail|courriel|nachricht|письм\w*|邮件)";
    Regex::new(&format!(
        r"(?i){GOT}\s+(?:\S+\s+){{0,3}}?{WHAT}|reset\w*\s+(?:my\s+|the\s+)?password\s+(?:\S+\s+){{0,3}}?(?:e-?mail|forgot\s+password)"
    ))
    .expect("valid regex")
});

/// Reading the mailbox in the other languages: "puedo leer el correo",
/// "consigo ler meu e-mail", "je peux lire mes courriels".
static MAIL_READ: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)(?:leer|revisar|ler|acessar|lire|consulter|lesen|abrufen|читать|читаю|проверять|読め|読む|确认|查看|阅读)\s*(?:\S+\s+){0,3}?(?:correo|e-?mails?|courriels?|mails?|почту|письма|メール|邮件|邮箱)")
        .expect("valid regex")
});

/// A mailbox that cannot receive, as opposed to one message not arriving.
static CANNOT: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)\b(?:cannot|can'?t|can\s+not|unable|no\s+longer|never)\b|ya\s+no|no\s+puedo|não\s+(?:consigo|posso)|ne\s+peux|kann\s+(?:\S+\s+)?(?:nicht|keine)|не\s+(?:могу|может)|无法|不能")
        .expect("valid regex")
});

/// Words after a match that still belong to it ("email access: no").
const TAIL_WORDS: usize = 2;

/// Whether the negation that counts for `m` is in its clause: anywhere
/// before or inside the match, or in the two words after it. Further on
/// it is about something else ("I received an email saying that address
/// is not verified").
fn negated(clause: &str, m: regex::Match<'_>) -> bool {
    let tail: String = clause[m.end()..]
        .split_whitespace()
        .take(TAIL_WORDS)
        .collect::<Vec<_>>()
        .join(" ");
    NEGATION.is_match(&clause[..m.end()]) || NEGATION.is_match(&tail)
}

/// Whether the requester still reads the linked address.
pub(super) fn email_access(doc: &Document, reasons: &[Reason]) -> Claim {
    // Prose first: it is what the requester actually said.
    for clause in CLAUSE.split(&doc.prose) {
        let said = [&*MAIL_ACCESS, &*MAIL_READ]
            .into_iter()
            .find_map(|re| re.find(clause));
        if let Some(m) = said {
            return if negated(clause, m) {
                Claim::No
            } else {
                Claim::Yes
            };
        }
    }
    for clause in CLAUSE.split(&doc.prose) {
        if MAIL_ACCESS_LOOSE.is_match(clause) && !NEGATION.is_match(clause) {
            return Claim::Yes;
        }
    }
    if let Some(claim) = form_answer(doc) {
        return claim;
    }
    // Mail that arrived says yes. One that did not says nothing sure (a
    // confirmation may be late or filtered) unless the mailbox cannot
    // receive at all ("I can't receive mail there any more").
    for clause in CLAUSE.split(&doc.prose) {
        let Some(m) = MAIL_RECEIVED.find(clause) else {
            continue;
        };
        if !negated(clause, m) {
            return Claim::Yes;
        }
        if CANNOT.is_match(&clause[..m.end()]) {
            return Claim::No;
        }
    }
    if reasons.contains(&Reason::LostEmailAccess) {
        return Claim::No;
    }
    Claim::Unknown
}

/// The yes or no of the form's email-access section.
fn form_answer(doc: &Document) -> Option<Claim> {
    let answer = doc.answers(SectionKind::EmailAccess);
    let caps = YES_NO.captures(&answer)?;
    let word = caps.get(1).map_or("", |m| m.as_str()).to_lowercase();
    let yes = [
        "yes", "yep", "sí", "si", "sim", "oui", "ja", "да", "是", "有",
    ];
    Some(if yes.contains(&word.as_str()) {
        Claim::Yes
    } else {
        Claim::No
    })
}

static COC: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)code\s+of\s+conduct|\bcoc\b|código\s+de\s+conduct[ao]|code\s+de\s+conduite|verhaltenskodex|кодекс\w*\s+поведения|行为准则|行為準則")
        .expect("valid regex")
});

static AGREE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)\b(?:agree|accept|abide|follow|comply|respect|read|acepto|de\s+acuerdo|concordo|aceito|cumplir|seguir|j'accepte|d'accord|respecter|akzeptiere|stimme|einverstanden|halte|согласен|согласна|принимаю|同意|遵守|接受)")
        .expect("valid regex")
});

static DISAGREE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)(?:do\s+not|don'?t|won'?t|will\s+not|refuse\s+to|cannot|can'?t)\s+(?:\w+\s+){0,2}?(?:agree|accept|abide|follow|comply)|disagree|no\s+acepto|não\s+(?:concordo|aceito)|je\s+n'accepte\s+pas|nicht\s+einverstanden|не\s+согласен|不同意")
        .expect("valid regex")
});

static DELAY: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)(?:take|takes|taking|need|needs)\s+(?:\w+\s+){0,5}?(?:time|while|weeks|days)|significant\s+amount\s+of\s+time|(?:happy|willing|ok|okay|fine|prepared|able)\s+to\s+wait|take\s+your\s+time|no\s+rush|acknowledg\w*\s+(?:the\s+)?(?:delay|wait|time|processing)|puede\s+tardar|llevar\s+tiempo|tomar\s+tiempo|pode\s+demorar|levar\s+(?:algum\s+)?tempo|peut\s+prendre\s+du\s+temps|prendre\s+(?:un\s+)?(?:certain\s+)?temps|(?:kann|dauert)\s+(?:\w+\s+){0,3}?(?:zeit|dauern)|zeit\s+(?:\w+\s+){0,2}?(?:dauern|brauchen|benötigen|in\s+anspruch)|может\s+занять\s+(?:\w+\s+)?времени|需要\S{0,6}时间|需要\S{0,4}時間|耐心等待")
        .expect("valid regex")
});

static UNDERSTAND: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)understand|acknowledg|aware|know|realize|realise|accept|entiendo|comprendo|entendo|compreendo|je\s+comprends|je\s+sais|verstehe|weiß|понимаю|знаю|理解|明白|知道|happy|willing|prepared|fine|okay|ok|no\s+rush|take\s+your\s+time|耐心")
        .expect("valid regex")
});

static IMPATIENT: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)(?:can'?t|cannot|can\s+not)\s+wait|(?:do\s+not|don'?t)\s+(?:accept|acknowledge)\s+(?:\w+\s+){0,3}?(?:delay|wait|time)")
        .expect("valid regex")
});

/// Code of Conduct agreement: prose, else the tick.
pub(super) fn code_of_conduct(doc: &Document) -> Tick {
    for sentence in CLAUSE_SENTENCE.split(&doc.prose) {
        if COC.is_match(sentence) {
            if DISAGREE.is_match(sentence) {
                return Tick::Refused;
            }
            if AGREE.is_match(sentence) {
                return Tick::Stated;
            }
        }
    }
    tick_for(doc, SectionKind::CodeOfConduct, |label| COC.is_match(label))
}

/// Acknowledgement that review takes time: prose, else the tick.
pub(super) fn delay(doc: &Document) -> Tick {
    for sentence in CLAUSE_SENTENCE.split(&doc.prose) {
        if IMPATIENT.is_match(sentence) {
            return Tick::Refused;
        }
        if DELAY.is_match(sentence) && UNDERSTAND.is_match(sentence) {
            return Tick::Stated;
        }
    }
    tick_for(doc, SectionKind::Acknowledgement, |label| {
        DELAY.is_match(label) || label.to_lowercase().contains("acknowledg")
    })
}

/// Sentences, for agreement phrases (a comma does not end a promise).
static CLAUSE_SENTENCE: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"[.!?;\n。！？]+").expect("valid regex"));

/// The tick in the section of `kind`, or any tick whose label matches.
fn tick_for(doc: &Document, kind: SectionKind, label_matches: impl Fn(&str) -> bool) -> Tick {
    let tick = doc
        .ticks
        .iter()
        .find(|t| t.section == Some(kind))
        .or_else(|| doc.ticks.iter().find(|t| label_matches(&t.label)));
    match tick {
        Some(t) if t.checked => Tick::Weak,
        Some(_) => Tick::Refused,
        None => Tick::Unknown,
    }
}

/// A solved word on its own ("solved", "Resuelto, gracias"): only counts in
/// a message of a few words, where it can mean nothing else.
static SOLVED_WORD: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)\b(?:solved|resolved|fixed)\b|resuelto|solucionado|resolvido|résolu|gelöst|erledigt|решено|已解决|已解決|解决了")
        .expect("valid regex")
});

/// Phrases that say the account is back or the request can go, whatever
/// the length: "I managed to log in", "please close this".
static SOLVED_PHRASE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)\b(?:(?:it|this|(?:the\s+)?(?:issue|problem)|my\s+(?:issue|problem|request))\s+(?:is|has\s+been|was|got)\s+(?:now\s+)?(?:solved|resolved|fixed|sorted)|i\s+(?:have\s+|'ve\s+)?(?:solved|resolved|fixed|sorted\s+out|figured\s+out)\s+(?:it|this|the\s+(?:issue|problem))|never\s*mind|got\s+back\s+(?:in|into)|regained\s+access|managed\s+to\s+(?:log|sign|get)\s+(?:in|back)|(?:was|were)\s+able\s+to\s+(?:log|sign)\s+in|(?:can|could)\s+(?:log|sign)\s+in\s+(?:again|now)|no\s+longer\s+need|please\s+close|you\s+can\s+close|can\s+be\s+closed)\b|ya\s+(?:pude|puedo)\s+(?:entrar|acceder)|já\s+consegui\s+(?:entrar|acessar)|problème\s+(?:est\s+)?résolu|j'ai\s+pu\s+me\s+connecter|hat\s+sich\s+erledigt|konnte\s+mich\s+(?:wieder\s+)?anmelden|проблема\s+решена|смог\s+войти|问题解决|已经可以登录")
        .expect("valid regex")
});

static NOT_SOLVED: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)\b(?:not|never|isn'?t|wasn'?t|hasn'?t|un)\s*(?:been\s+|yet\s+)?(?:solved|resolved|fixed)|still\s+(?:not|can'?t|cannot|unable)|can'?t\s+(?:log|sign)\s+in|cannot\s+(?:log|sign)\s+in|no\s+(?:está\s+)?resuelto|não\s+(?:foi\s+)?resolvido|pas\s+résolu|nicht\s+gelöst|не\s+решено|没有?解决")
        .expect("valid regex")
});

/// Most words a message may have for a bare "solved" to count.
const SOLVED_WORDS: usize = 8;

/// The body says the problem is gone: a few words around "solved", or a
/// phrase that can only mean it ("I managed to log in", "please close
/// this"), and nothing saying it is not ("still can't log in"). A subject
/// starting with "[solved]" counts too. Solved can close a case, so a
/// sentence that merely contains "fixed" ("I fixed my phone but the app is
/// gone") must not.
pub(super) fn solved(text: &str, subject: &str) -> bool {
    let subject = subject.trim_start().to_lowercase();
    let subject_says = subject.starts_with("[solved]") || subject.starts_with("solved");
    let words = text.split_whitespace().count();
    let body_says =
        (SOLVED_WORD.is_match(text) && words <= SOLVED_WORDS) || SOLVED_PHRASE.is_match(text);
    (body_says || subject_says) && !NOT_SOLVED.is_match(text)
}

static CHASE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)any\s+(?:update|news|progress|word)|(?:is\s+there\s+)?(?:an?\s+)?update\s+on|status\s+(?:of|on)\s+(?:my|this|the)|following\s+up|follow(?:ing)?[-\s]up|checking\s+in|\bbump\b|still\s+waiting|haven'?t\s+heard|have\s+not\s+heard|no\s+(?:reply|response)\s+(?:yet|so\s+far)|any\s+eta|alguna\s+(?:novedad|actualización|actualizacion|noticia)|hay\s+novedades|alguma\s+(?:novidade|atualização|atualizacao|notícia)|des\s+nouvelles|du\s+nouveau|où\s+en\s+est|gibt\s+es\s+(?:schon\s+)?(?:neuigkeiten|ein\s+update|etwas\s+neues)|какие[-\s]то\s+новости|есть\s+(?:ли\s+)?новости|какие\s+новости|有进展吗|有進展嗎|有更新吗|进展如何|进度如何|请问进度|有消息吗")
        .expect("valid regex")
});

/// The message is mainly "any update?": it chases, is short, and brings
/// no form.
pub(super) fn status_chase(doc: &Document) -> bool {
    let words = doc.text.split_whitespace().count();
    let chars = doc.text.chars().count();
    CHASE.is_match(&doc.text) && !doc.is_form() && words <= 60 && chars <= 500
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Document {
        Document::parse(text)
    }

    #[test]
    fn access_to_a_list_ending_in_the_linked_address_is_a_yes() {
        let d =
            doc("I still have access to the username, the password and the linked email address.");
        assert_eq!(email_access(&d, &[]), Claim::Yes);
        let d = doc("I have access to my password but not to the linked email address.");
        assert_ne!(email_access(&d, &[]), Claim::Yes);
    }

    #[test]
    fn email_access_is_read_clause_by_clause() {
        let d = doc("I lost my phone, but I still have access to my email.");
        assert_eq!(email_access(&d, &[]), Claim::Yes);
        let d = doc("I no longer have access to the email address on the account.");
        assert_eq!(email_access(&d, &[]), Claim::No);
        let d = doc("I can't access my account with my email and password.");
        assert_eq!(email_access(&d, &[]), Claim::Unknown);
        let d = doc("I can't log in with my email.");
        assert_eq!(email_access(&d, &[]), Claim::Unknown);
        assert_eq!(email_access(&doc("Hello"), &[]), Claim::Unknown);
    }

    #[test]
    fn reading_the_mailbox_in_other_languages_is_a_yes() {
        let d = doc("Perdí el teléfono.\n\nTodavía puedo leer el correo electrónico de la cuenta.");
        assert_eq!(email_access(&d, &[]), Claim::Yes);
        let d = doc("Je peux encore lire mes courriels.");
        assert_eq!(email_access(&d, &[]), Claim::Yes);
        let d = doc("Ya no puedo leer el correo de la cuenta.");
        assert_eq!(email_access(&d, &[]), Claim::No);
    }

    #[test]
    fn mail_that_arrived_implies_access_and_later_negation_is_elsewhere() {
        let d = doc("When I tried to reset the password, I received an email saying that the email is not verified.");
        assert_eq!(email_access(&d, &[]), Claim::Yes);
        let d = doc("I have access to the address, but forgot my password.");
        assert_eq!(email_access(&d, &[]), Claim::Yes);
        // Not receiving a confirmation says nothing sure about the mailbox.
        let d = doc("I am not receiving any confirmation email.");
        assert_eq!(email_access(&d, &[]), Claim::Unknown);
        let d = doc("I can't receive emails at that old address.");
        assert_eq!(email_access(&d, &[]), Claim::No);
    }

    #[test]
    fn a_ticked_box_is_weak_and_an_empty_box_refused() {
        let d = doc("### Code of Conduct\n- [X] I agree to follow the PSF Code of Conduct\n### Acknowledgement\n- [ ] I acknowledge that it may take time");
        assert_eq!(code_of_conduct(&d), Tick::Weak);
        assert_eq!(delay(&d), Tick::Refused);
    }

    #[test]
    fn own_words_beat_ticks() {
        let d =
            doc("- [ ] I acknowledge it may take time\n\nI understand this may take a few weeks.");
        assert_eq!(delay(&d), Tick::Stated);
        let d = doc("I agree to the Code of Conduct.");
        assert_eq!(code_of_conduct(&d), Tick::Stated);
    }

    #[test]
    fn solved_needs_no_negation() {
        assert!(solved("Solved, thanks!", ""));
        assert!(!solved("This is still not solved.", ""));
        assert!(!solved("I solved the captcha but still can't log in.", ""));
        assert!(!solved("I fixed my phone screen but the app is gone.", ""));
        assert!(solved(
            "Good news: I managed to log in with an old backup code, you can close this request.",
            ""
        ));
        assert!(solved("", "[Solved] Account recovery"));
    }

    #[test]
    fn a_long_request_mentioning_an_update_is_not_a_chase() {
        let long = "any update? ".to_string() + &"word ".repeat(80);
        assert!(!status_chase(&doc(&long)));
        assert!(status_chase(&doc("有进展吗？")));
    }
}
