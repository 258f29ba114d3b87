//! "I don't remember which username I used": the requester says they do
//! not know the account's username, so the case looks the account up by
//! the address they wrote from instead of asking for a name they cannot
//! give.
//!
//! Self-contained on purpose: one regex per language the desk reads
//! (English, Spanish, Portuguese, French, German), matched against the
//! normalised new text. A miss only means the username is asked for, as
//! before; a false hit would skip that question, so every pattern needs
//! the word for "username" (or "login"/"account name") next to a verb of
//! forgetting, and a forgotten *password* alone never matches.

use once_cell::sync::Lazy;
use regex::Regex;

/// The phrasings, by language; `(?i)` with Unicode case folding.
static FORGOT: Lazy<Vec<Regex>> = Lazy::new(|| {
    [
        // en: "I don't remember which username I used", "forgot my
        // username", "I'm not sure what my username is", "no idea of my
        // user name", "I can't recall the login name".
        r"(?i)\b(?:do\s*n[o']?t|did\s*n[o']?t|can\s*n[o']?t|cannot|ca\s*n't|no\s+longer|never)\s+(?:remember|recall|know|find)\b[^.!?,;\n]{0,40}?\buser\s?-?names?\b",
        r"(?i)\b(?:forg[eo]t(?:ten)?|lost)\s+(?:(?:my|the|which|what)\s+){0,2}(?:pypi\s+)?(?:user\s?-?name|login(?:\s+name)?|account\s+name)\b",
        r"(?i)\b(?:not\s+sure|no\s+idea|unsure)\s+(?:of\s+|about\s+)?(?:which|what)?\s*(?:my\s+|the\s+)?(?:user\s?-?name|login(?:\s+name)?|account\s+name)\b",
        r"(?i)\buser\s?-?name\b[^.!?,;\n]{0,30}?\b(?:i\s+(?:do\s*n[o']?t|can\s*n[o']?t|cannot)\s+(?:remember|recall)|(?:i\s+)?forgot|escapes\s+me)\b",
        // es: "no recuerdo qué nombre de usuario usé", "olvidé mi usuario",
        // "he olvidado el nombre de usuario", "no me acuerdo de mi usuario".
        r"(?i)\bno\s+(?:recuerdo|sé|se|me\s+acuerdo)\b[^.!?,;\n]{0,40}?\b(?:nombre\s+de\s+usuario|usuario)\b",
        r"(?i)\bolvid(?:é|e|ado)\s+(?:(?:mi|el|cuál|cual|qué|que)\s+){0,2}(?:nombre\s+de\s+usuario|usuario)\b",
        // pt: "não lembro qual nome de usuário usei", "esqueci meu
        // usuário", "não me lembro do nome de utilizador".
        r"(?i)\bn[ãa]o\s+(?:me\s+)?(?:lembro|sei|recordo)\b[^.!?,;\n]{0,40}?\b(?:nome\s+de\s+usu[áa]rio|usu[áa]rio|utilizador)\b",
        r"(?i)\besqueci\s+(?:(?:o|meu|qual|do|de)\s+){0,2}(?:nome\s+de\s+usu[áa]rio|usu[áa]rio|utilizador)\b",
        // fr: "je ne me souviens plus de mon nom d'utilisateur", "j'ai
        // oublié mon identifiant", "je ne sais plus quel nom d'utilisateur".
        r"(?i)\bne\s+(?:me\s+souviens|sais|rappelle)\s+(?:plus|pas)\b[^.!?,;\n]{0,40}?\b(?:nom\s+d'utilisateur|identifiant|pseudo)\b",
        r"(?i)\boubli[ée]\s+(?:(?:mon|le|quel)\s+){0,2}(?:nom\s+d'utilisateur|identifiant|pseudo)\b",
        // de: "ich weiß meinen Benutzernamen nicht mehr", "Benutzername
        // vergessen", "ich erinnere mich nicht an den Benutzernamen".
        r"(?i)\bbenutzername[n]?\b[^.!?,;\n]{0,40}?\b(?:nicht\s+mehr|entfallen)\b",
        r"(?i)\bbenutzername[n]?\s+(?:\w+\s+){0,2}vergessen\b",
        r"(?i)\b(?:erinnere\s+mich\s+nicht|wei(?:ß|ss)\s+nicht\s+mehr)\b[^.!?,;\n]{0,40}?\bbenutzername[n]?\b",
    ]
    .iter()
    .map(|p| Regex::new(p).expect("valid regex"))
    .collect()
});

/// True when the text says the requester does not know their username.
pub(super) fn said(text: &str) -> bool {
    FORGOT.iter().any(|re| re.is_match(text))
}

#[cfg(test)]
mod tests {
    use super::said;

    #[test]
    fn forgotten_usernames_are_heard_in_every_language_read() {
        for text in [
            "I don't remember which username I used, I use this email for everything.",
            "I do not remember my username.",
            "I forgot my username and my password.",
            "Honestly I've forgotten the username.",
            "I'm not sure which username I registered with.",
            "I can't recall my user name",
            "My username escapes me.",
            "No recuerdo qué nombre de usuario usé, uso este correo para todo.",
            "Olvidé mi usuario.",
            "Não lembro qual nome de usuário usei.",
            "Esqueci meu usuário.",
            "Je ne me souviens plus de mon nom d'utilisateur.",
            "J'ai oublié mon identifiant.",
            "Ich weiß meinen Benutzernamen nicht mehr.",
            "Ich habe den Benutzernamen vergessen.",
        ] {
            assert!(said(text), "{text}");
        }
    }

    #[test]
    fn a_forgotten_password_or_a_given_username_is_not_a_forgotten_username() {
        for text in [
            "I forgot my password. My username is jodoe.",
            "I lost my phone with the authenticator app.",
            "Olvidé mi contraseña.",
            "J'ai oublié mon mot de passe.",
            "Ich habe mein Passwort vergessen.",
            "Username: jodoe",
            "I don't remember the password, my username is jodoe.",
            "Ich habe mein Passwort vergessen, mein Benutzername ist jodoe.",
            "",
        ] {
            assert!(!said(text), "{text}");
        }
    }
}
