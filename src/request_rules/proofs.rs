//! Ownership proofs offered: package names, repository URLs, previous
//! addresses, account creation date.
//!
//! Only what the requester offers as proof is taken: a package named in a
//! "packages I maintain" phrase or the projects section, an address named
//! as old or previously linked, a date next to "created"/"registered".
//! Staff weigh these; a wrong guess here would look like evidence.

use once_cell::sync::Lazy;
use regex::Regex;

use super::sections::{Document, SectionKind};
use crate::request::Proofs;

/// Repository URLs on the forges people use.
static REPO_URL: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)https?://(?:www\.)?(?:github\.com|gitlab\.com|bitbucket\.org|codeberg\.org|git\.sr\.ht|sr\.ht|salsa\.debian\.org|gitee\.com)/[A-Za-z0-9_.~-]+/[A-Za-z0-9_.-]+")
        .expect("valid regex")
});

/// A project page on any index host: `/project/<name>/`.
static PROJECT_URL: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"https?://[^\s/]+/project/([A-Za-z0-9._-]+)").expect("valid regex"));

/// "I maintain the packages `a`, `b` and `c`", "my package foo", "owner
/// of foo-bar", and translations. The list is read separately.
static PACKAGE_PHRASE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(&format!(
        r"(?i)(?:(?:maintain|maintainer\s+of|own|owner\s+of|author\s+of|published|publish|uploaded|released|upload|wrote|created|manage)\s+(?:the\s+|my\s+|a\s+|our\s+)?(?:following\s+)?(?:packages?|projects?|libraries|library)|(?:my|our)\s+(?:packages?|projects?|librar(?:y|ies))|packages?\s*(?:i\s+own|i\s+maintain)?\s*:|projects?\s*:|(?:mis|meus|mes|meine)\s+(?:paquetes|pacotes|paquets|pakete|proyectos|projetos|projets|projekte)|мои\s+(?:пакеты|проекты)|我的(?:包|项目))\s*(?:called|named|is|are|include|:)?\s*{LIST}"
    ))
    .expect("valid regex")
});

/// "maintainer of x", "I maintain x": no noun says a package follows, so
/// only name-shaped words count (quoted, or with `-`, `_`, `.` or a digit).
static PACKAGE_OF: Lazy<Regex> = Lazy::new(|| {
    Regex::new(&format!(
        r"(?i)\b(?:maintainer|author|owner)\s+of\s+(?:the\s+)?{LIST}|\bi\s+maintain\s+{LIST}"
    ))
    .expect("valid regex")
});

/// A list after a package phrase: up to the end of the sentence, a
/// semicolon or a parenthesis ("`a`, `b` (account: x)"); a dot inside a
/// name ("zope.interface") does not end it.
const LIST: &str = r"((?:[^\n.;()]|\.[^\s.;()])+)";

static PACKAGE_NAME: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"^[A-Za-z0-9](?:[A-Za-z0-9._-]{0,98}[A-Za-z0-9])?$").expect("valid regex")
});

static ADDRESS: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+").expect("valid regex")
});

/// Words that make an address in the same sentence a previous one.
static PREVIOUS: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)previous|old|former|used\s+to|earlier|originally|registered|linked|associated|signed\s+up|was\s+using|antigu[oa]|anterior|antig[oa]|ancien|ancienne|alte|früher|frühere|старый|старая|прежн|以前|旧")
        .expect("valid regex")
});

static CREATED: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)creat|registered|register|signed\s+up|opened|made\s+(?:the|my)\s+account|account\s+since|member\s+since|creé|criei|créé|erstellt|angelegt|registriert|зарегистр|создал|注册|創建|创建")
        .expect("valid regex")
});

static DATE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?i)\b\d{4}-\d{2}(?:-\d{2})?\b|\b\d{1,2}[./]\d{1,2}[./](?:19|20)\d{2}\b|\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?|enero|febrero|marzo|abril|mayo|junio|julio|agosto|septiembre|octubre|noviembre|diciembre|janvier|février|mars|avril|mai|juin|juillet|août|septembre|octobre|novembre|décembre|januar|februar|märz|juni|juli|oktober|dezember)\.?\s+(?:\d{1,2},?\s+)?(?:19|20)\d{2}\b|\b(?:19|20)\d{2}年(?:\d{1,2}月)?|\b(?:around|about|circa|in|since|en|em|im|в)\s+(?:(?:early|late|mid)[-\s])?(?:19|20)\d{2}\b|\b(?:19|20)\d{2}\b|\b\d+\s+years?\s+ago\b")
        .expect("valid regex")
});

/// Words a package list phrase may contain that are no package.
const NOT_PACKAGES: &[&str] = &[
    "and",
    "or",
    "the",
    "a",
    "an",
    "on",
    "pypi",
    "package",
    "packages",
    "project",
    "projects",
    "library",
    "libraries",
    "called",
    "named",
    "which",
    "that",
    "is",
    "are",
    "my",
    "our",
    "i",
    "several",
    "some",
    "few",
    "many",
    "including",
    "include",
    "e.g",
    "etc",
    "also",
    "under",
    "account",
    "this",
    "these",
    "those",
    "with",
    "for",
    "y",
    "e",
    "et",
    "und",
    "и",
    "和",
    "since",
    "from",
    "to",
    "in",
    "of",
    "it",
    "them",
    "there",
    "here",
    "before",
    "years",
];

/// Everything offered as proof.
pub(super) fn find(doc: &Document, ignore: &[String], lookup: Option<&str>) -> Proofs {
    let mut proofs = Proofs::default();
    let text = &doc.text;
    for m in REPO_URL.find_iter(text) {
        let url = m
            .as_str()
            .trim_end_matches(".git")
            .trim_end_matches(['.', ',', ')']);
        push_unique(&mut proofs.repository_urls, url);
    }
    for caps in PROJECT_URL.captures_iter(text) {
        if let Some(name) = caps.get(1) {
            push_unique(&mut proofs.packages, name.as_str());
        }
    }
    for line in doc.answers(SectionKind::Projects).lines() {
        if !line.contains("://") {
            package_list(line, false, &mut proofs.packages);
        }
    }
    for caps in PACKAGE_PHRASE.captures_iter(&doc.prose) {
        if let Some(list) = caps.get(1) {
            if !list.as_str().contains("://") {
                package_list(list.as_str(), false, &mut proofs.packages);
            }
        }
    }
    for caps in PACKAGE_OF.captures_iter(&doc.prose) {
        if let Some(list) = caps.get(1).or_else(|| caps.get(2)) {
            if !list.as_str().contains("://") {
                package_list(list.as_str(), true, &mut proofs.packages);
            }
        }
    }
    for sentence in SENTENCE.split(text) {
        if !PREVIOUS.is_match(sentence) {
            continue;
        }
        for m in ADDRESS.find_iter(sentence) {
            let addr = m.as_str().trim_end_matches('.').to_lowercase();
            if !ignore.contains(&addr) && lookup != Some(addr.as_str()) {
                push_unique(&mut proofs.previous_addresses, &addr);
            }
        }
    }
    proofs.account_created = SENTENCE
        .split(text)
        .filter(|s| {
            CREATED.is_match(s) && s.to_lowercase().contains("account")
                || CREATED.is_match(s) && DATE.is_match(s) && !s.contains("://")
        })
        .find_map(|s| DATE.find(s).map(|m| m.as_str().trim().to_string()));
    proofs
}

static SENTENCE: Lazy<Regex> =
    Lazy::new(|| Regex::new(r"[!?;\n。！？]+|\.\s").expect("valid regex"));

/// Reads "`foo`, bar-baz and qux" into names.
/// `name_shaped` keeps only words that cannot be ordinary prose.
fn package_list(list: &str, name_shaped: bool, into: &mut Vec<String>) {
    for raw in list.split([',', ' ', '/', '、', '，']) {
        let quoted = raw.trim().starts_with(['`', '\'', '"']);
        let name = raw
            .trim()
            .trim_matches(['`', '\'', '"', '*', '(', ')', '[', ']', '-', ':'])
            .trim_end_matches(['.', '!', '?']);
        if name.is_empty() || NOT_PACKAGES.contains(&name.to_lowercase().as_str()) {
            continue;
        }
        let shaped =
            quoted || name.contains(['-', '_', '.']) || name.chars().any(|c| c.is_ascii_digit());
        // Digits-only words are counts or years, not package names.
        if PACKAGE_NAME.is_match(name)
            && !name.chars().all(|c| c.is_ascii_digit())
            && (!name_shaped || shaped)
        {
            push_unique(into, name);
        }
    }
}

fn push_unique(into: &mut Vec<String>, item: &str) {
    if !into.iter().any(|i| i.eq_ignore_ascii_case(item)) {
        into.push(item.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proofs(text: &str) -> Proofs {
        find(&Document::parse(text), &[], None)
    }

    #[test]
    fn packages_and_repositories_are_collected() {
        let p = proofs("I maintain the packages `tinyparse`, fastgrid and jo-utils. Code at https://github.com/jodoe/tinyparse.");
        assert_eq!(p.packages, vec!["tinyparse", "fastgrid", "jo-utils"]);
        assert_eq!(
            p.repository_urls,
            vec!["https://github.com/jodoe/tinyparse"]
        );
    }

    #[test]
    fn prose_around_proofs_is_not_a_package() {
        let p =
            proofs("The account was created in 2016 and my previous address was wren@old.example.");
        assert!(p.packages.is_empty(), "{:?}", p.packages);
        let p = proofs("I'm the maintainer of `quailpipe` and quail-cli (account: quail_maint).");
        assert_eq!(p.packages, vec!["quailpipe", "quail-cli"]);
    }

    #[test]
    fn previous_addresses_need_a_word_saying_so() {
        let p = proofs("My old address was jo@uni.example. Reply to me at jo@new.example please");
        assert_eq!(p.previous_addresses, vec!["jo@uni.example"]);
    }

    #[test]
    fn the_creation_date_is_kept_as_written() {
        let p = proofs("I created the account in March 2019.");
        assert_eq!(p.account_created.as_deref(), Some("March 2019"));
    }

    #[test]
    fn a_projects_section_lists_packages() {
        let p = proofs(
            "### PyPI Project URL(s)\n\nhttps://index.example/project/tinyparse/\nfastgrid\n",
        );
        assert_eq!(p.packages, vec!["tinyparse", "fastgrid"]);
    }
}
