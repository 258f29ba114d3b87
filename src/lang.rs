//! Language of a message's new text, as an ISO 639-1 code.
//!
//! Owns: turning the sender's new text into a two-letter language code the
//! case records and templates are chosen by. Does not own: which languages
//! have templates (the operator's config does) or stripping quotes first
//! (the caller passes [`crate::quote::new_text`] output).
//!
//! Pure. Uses `whatlang` on the prose only: URLs, addresses, form headings
//! and code spans are English or no language at all, and a Spanish request
//! that pastes an English form is still a Spanish request.

use once_cell::sync::Lazy;
use regex::Regex;
use whatlang::Lang;

/// Fewer letters than this and trigram statistics are a guess.
const MIN_LETTERS: usize = 20;
/// Han, kana or hangul characters carry a lot per character; this many are
/// enough to tell Chinese from Japanese from Korean.
const MIN_CJK: usize = 4;

/// Things in a request that are not prose in any language.
static NOT_PROSE: Lazy<Regex> = Lazy::new(|| {
    Regex::new(
        r"(?m)https?://\S+|\S+@\S+|`[^`\n]*`|^\s*#{1,6}\s.*$|^\s*(?:[-*]\s*)?\[[ xX]\].*$|\[redacted [a-z_]+\]|\b\w+[_.-]\w[\w.-]*",
    )
    .expect("valid regex")
});

/// Detects the language; `None` when the text is too short to tell.
pub fn detect(text: &str) -> Option<String> {
    // The language shows in the first paragraphs; reading a long message
    // whole costs time (trigram counting is linear) and changes nothing.
    let text = head(text, MAX_CHARS);
    detect_prose(&NOT_PROSE.replace_all(text, " ")).or_else(|| {
        // A form answered in a few words ("Forgot password, no 2FA.") is
        // still written in the form's language: with too little prose,
        // the headings and box labels decide.
        let with_form = FORM_MARKUP.replace_all(text, " ");
        detect_prose(&with_form)
    })
}

/// Characters of a message read for its language: about a hundred words,
/// which score the same on the reading sets as 1,500 characters did, at
/// less than half the cost (trigram scoring is the dearest step of reading).
const MAX_CHARS: usize = 600;

/// The first `max` characters of `text` (on a character boundary).
fn head(text: &str, max: usize) -> &str {
    match text.char_indices().nth(max) {
        Some((idx, _)) => &text[..idx],
        None => text,
    }
}

/// Markdown markup around form headings and boxes, dropped so their words
/// can be read when the prose alone is too short.
static FORM_MARKUP: Lazy<Regex> = Lazy::new(|| {
    Regex::new(r"(?m)https?://\S+|\S+@\S+|`[^`\n]*`|^\s*#{1,6}|^\s*(?:[-*]\s*)?\[[ xX]\]|\[redacted [a-z_]+\]")
        .expect("valid regex")
});

fn detect_prose(prose: &str) -> Option<String> {
    let letters = prose.chars().filter(|c| c.is_alphabetic()).count();
    let cjk = prose.chars().filter(|&c| is_cjk(c)).count();
    if letters < MIN_LETTERS && cjk < MIN_CJK {
        return None;
    }
    // whatlang reads Chinese with no script ambiguity; a short Chinese
    // message ("账户无法登录") has too few trigrams for it to be "reliable",
    // so the script alone decides.
    if cjk >= MIN_CJK && cjk * 2 >= letters {
        if prose
            .chars()
            .any(|c| ('\u{3040}'..='\u{30ff}').contains(&c))
        {
            return Some("ja".into());
        }
        if prose
            .chars()
            .any(|c| ('\u{ac00}'..='\u{d7af}').contains(&c))
        {
            return Some("ko".into());
        }
        return Some("zh".into());
    }
    let info = whatlang::detect(prose)?;
    // Short texts are accepted at a lower confidence: a two-line reply in
    // Spanish is still better answered in Spanish than in nothing. Where
    // trigrams are unsure, the function words of the common Latin-script
    // languages get a vote: they are what short texts are made of.
    let guess = if info.is_reliable() {
        info.lang()
    } else {
        function_word_vote(prose).unwrap_or(info.lang())
    };
    let lang = match guess {
        Lang::Spa | Lang::Por => iberian(prose),
        // Short Russian is often read as a neighbour. Each neighbour has
        // letters Russian lacks (Bulgarian ъ as a vowel, Ukrainian і ї є ґ,
        // Belarusian ў і, Macedonian and Serbian ј љ њ …); without any of
        // them, or with Russian-only ы э ё, the text is Russian.
        Lang::Bul | Lang::Ukr | Lang::Bel | Lang::Mkd | Lang::Srp
            if prose.contains(['ы', 'э', 'ё', 'Ы', 'Э', 'Ё'])
                || !prose.contains([
                    'ъ', 'і', 'ї', 'є', 'ґ', 'ў', 'ј', 'љ', 'њ', 'џ', 'ђ', 'ћ', 'ѓ', 'ќ',
                ]) =>
        {
            Lang::Rus
        }
        other => other,
    };
    iso_639_1(lang).map(str::to_string)
}

/// Function words of the Latin-script languages requests come in.
static FUNCTION_WORDS: Lazy<Vec<(Lang, Regex)>> = Lazy::new(|| {
    [
        (
            Lang::Eng,
            r"the|and|my|is|i|to|of|it|in|you|for|was|have|this|with|not|can|me|but|here|that|lost",
        ),
        (
            Lang::Spa,
            r"el|la|los|las|y|mi|es|de|que|en|no|por|con|para|una|un|lo|pero|ya|tengo|perdí",
        ),
        (
            Lang::Por,
            r"o|a|os|as|e|meu|minha|é|de|que|em|não|por|com|para|uma|um|mas|tenho|perdi",
        ),
        (
            Lang::Fra,
            r"le|la|les|et|mon|ma|est|de|que|en|ne|pas|pour|avec|une|un|je|j'ai|mais|perdu",
        ),
        (
            Lang::Deu,
            r"der|die|das|und|mein|meine|ist|zu|nicht|ich|mit|für|ein|eine|habe|aber|auf|verloren",
        ),
        (
            Lang::Ita,
            r"il|lo|la|e|mio|mia|è|di|che|non|per|con|una|un|ho|ma|perso",
        ),
        (
            Lang::Nld,
            r"de|het|en|mijn|is|van|dat|niet|ik|met|voor|een|heb|maar|verloren",
        ),
    ]
    .into_iter()
    .map(|(lang, words)| {
        (
            lang,
            Regex::new(&format!(r"(?i)\b(?:{words})\b")).expect("valid regex"),
        )
    })
    .collect()
});

/// The language whose function words occur most, when one clearly leads
/// (at least two hits and more than any other).
fn function_word_vote(prose: &str) -> Option<Lang> {
    let mut counts: Vec<(usize, Lang)> = FUNCTION_WORDS
        .iter()
        .map(|(lang, re)| (re.find_iter(prose).count(), *lang))
        .collect();
    counts.sort_by_key(|&(count, _)| std::cmp::Reverse(count));
    match counts.as_slice() {
        [(top, lang), (second, _), ..] if *top >= 2 && top > second => Some(*lang),
        _ => None,
    }
}

/// Spanish or Portuguese: trigrams confuse the two on short texts, while
/// a few spellings and function words tell them apart at once.
fn iberian(prose: &str) -> Lang {
    static SPANISH: Lazy<Regex> = Lazy::new(|| {
        Regex::new(r"(?i)[ñ¿¡]|\b(?:y|el|mi|mis|ya|puedo|tengo|pero|cuenta|usuario|perdí|teléfono|correo|gracias|ayuda|hola|estoy|desde|muy)\b")
            .expect("valid regex")
    });
    static PORTUGUESE: Lazy<Regex> = Lazy::new(|| {
        Regex::new(r"(?i)[ãõç]|\b(?:e|o|meu|minha|não|é|um|uma|você|consigo|conta|usuário|perdi|telefone|celular|obrigad[oa]|olá|estou|muito|ajuda)\b")
            .expect("valid regex")
    });
    let es = SPANISH.find_iter(prose).count();
    let pt = PORTUGUESE.find_iter(prose).count();
    if pt > es {
        Lang::Por
    } else {
        Lang::Spa
    }
}

fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}' | '\u{3040}'..='\u{30ff}' | '\u{ac00}'..='\u{d7af}')
}

/// whatlang speaks ISO 639-3; the case and templates speak 639-1.
fn iso_639_1(lang: Lang) -> Option<&'static str> {
    Some(match lang {
        Lang::Epo => "eo",
        Lang::Eng => "en",
        Lang::Rus => "ru",
        Lang::Cmn => "zh",
        Lang::Spa => "es",
        Lang::Por => "pt",
        Lang::Ita => "it",
        Lang::Ben => "bn",
        Lang::Fra => "fr",
        Lang::Deu => "de",
        Lang::Ukr => "uk",
        Lang::Kat => "ka",
        Lang::Ara => "ar",
        Lang::Hin => "hi",
        Lang::Jpn => "ja",
        Lang::Heb => "he",
        Lang::Yid => "yi",
        Lang::Pol => "pl",
        Lang::Amh => "am",
        Lang::Jav => "jv",
        Lang::Kor => "ko",
        Lang::Nob => "nb",
        Lang::Dan => "da",
        Lang::Swe => "sv",
        Lang::Fin => "fi",
        Lang::Tur => "tr",
        Lang::Nld => "nl",
        Lang::Hun => "hu",
        Lang::Ces => "cs",
        Lang::Ell => "el",
        Lang::Bul => "bg",
        Lang::Bel => "be",
        Lang::Mar => "mr",
        Lang::Kan => "kn",
        Lang::Ron => "ro",
        Lang::Slv => "sl",
        Lang::Hrv => "hr",
        Lang::Srp => "sr",
        Lang::Mkd => "mk",
        Lang::Lit => "lt",
        Lang::Lav => "lv",
        Lang::Est => "et",
        Lang::Tam => "ta",
        Lang::Vie => "vi",
        Lang::Urd => "ur",
        Lang::Tha => "th",
        Lang::Guj => "gu",
        Lang::Uzb => "uz",
        Lang::Pan => "pa",
        Lang::Aze => "az",
        Lang::Ind => "id",
        Lang::Tel => "te",
        Lang::Pes => "fa",
        Lang::Mal => "ml",
        Lang::Ori => "or",
        Lang::Mya => "my",
        Lang::Nep => "ne",
        Lang::Sin => "si",
        Lang::Khm => "km",
        Lang::Tuk => "tk",
        Lang::Aka => "ak",
        Lang::Zul => "zu",
        Lang::Sna => "sn",
        Lang::Afr => "af",
        Lang::Lat => "la",
        Lang::Slk => "sk",
        Lang::Cat => "ca",
        Lang::Tgl => "tl",
        Lang::Hye => "hy",
        #[allow(unreachable_patterns)]
        _ => return None,
    })
}

/// `text` with its first letter in upper case ("the username" as a list
/// item, "reply-to" as a header's "Reply-To").
pub(crate) fn upper_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A lower-case Latin letter without its accent (Cyrillic, CJK and
/// everything else unchanged): people type "nao", "codigo", "si" as often
/// as the accented words, on keyboards that lack them.
pub(crate) fn fold_accent(c: char) -> char {
    match c {
        'á' | 'à' | 'â' | 'ä' | 'ã' | 'å' => 'a',
        'é' | 'è' | 'ê' | 'ë' => 'e',
        'í' | 'ì' | 'î' | 'ï' => 'i',
        'ó' | 'ò' | 'ô' | 'ö' | 'õ' => 'o',
        'ú' | 'ù' | 'û' | 'ü' => 'u',
        'ç' => 'c',
        'ñ' => 'n',
        'ÿ' => 'y',
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn english_prose_is_english() {
        let t = "I lost my phone with the authenticator app and cannot log in to my account.";
        assert_eq!(detect(t).as_deref(), Some("en"));
    }

    #[test]
    fn other_languages_get_their_two_letter_code() {
        let cases = [
            ("es", "Perdí mi teléfono y ya no puedo entrar en mi cuenta, necesito ayuda por favor."),
            ("pt", "Perdi meu celular e não consigo mais acessar minha conta, preciso de ajuda."),
            ("fr", "J'ai perdu mon téléphone et je ne peux plus accéder à mon compte, merci de m'aider."),
            ("de", "Ich habe mein Handy verloren und kann mich nicht mehr in mein Konto einloggen."),
            ("ru", "Я потерял телефон и больше не могу войти в свою учётную запись, помогите."),
            ("zh", "我的手机丢了，无法登录账户"),
        ];
        for (code, text) in cases {
            assert_eq!(detect(text).as_deref(), Some(code), "{text}");
        }
    }

    #[test]
    fn short_russian_is_not_taken_for_a_neighbour() {
        let t = "Да, я согласен с кодексом поведения. Мой логин — sergei_k.";
        assert_eq!(detect(t).as_deref(), Some("ru"));
    }

    #[test]
    fn short_english_around_a_redacted_token_stays_english() {
        let t = "My username is stint_py. I lost my phone. Here is my token in case: [redacted api_token]";
        assert_eq!(detect(t).as_deref(), Some("en"));
    }

    #[test]
    fn very_short_text_has_no_language() {
        assert_eq!(detect("ok"), None);
        assert_eq!(detect("thanks!"), None);
        assert_eq!(detect(""), None);
    }

    #[test]
    fn a_pasted_english_form_does_not_outvote_the_prose() {
        let t = "### PyPI Username\n\n`jodoe`\n\n### Reason\n\nPerdí mi teléfono y ya no puedo entrar en mi cuenta de ninguna manera.";
        assert_eq!(detect(t).as_deref(), Some("es"));
    }
}
