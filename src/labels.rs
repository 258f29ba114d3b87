//! The words the composer puts into template contexts ("what we
//! understood", missing fields, reasons, secret kinds), per language, so a
//! Spanish mail does not carry English labels. English is the fallback;
//! add a language by adding a table. Spanish uses the informal register
//! ("tú"), like the shipped Spanish templates.

use crate::request::{Field, Reason};
use crate::secrets::SecretKind;

/// Labels for one language.
pub struct Labels {
    /// "Username".
    pub username: &'static str,
    /// "Account looked up by address".
    pub lookup_address: &'static str,
    /// The username's value when they said they forgot it.
    pub username_forgotten: &'static str,
    /// "Reason".
    pub reason: &'static str,
    /// "Access to the linked email address".
    pub email_access: &'static str,
    /// "Agrees to the Code of Conduct".
    pub code_of_conduct: &'static str,
    /// "Understands review takes time".
    pub delay: &'static str,
    /// "Package", "Repository", "Earlier address", "Account created".
    pub proofs: [&'static str; 4],
    /// "yes", "no", "yes (ticked)".
    pub yes_no_ticked: [&'static str; 3],
    /// Label and hint per field, in [`Field::ALL`] order.
    pub fields: [(&'static str, &'static str); 6],
    /// Per reason, in the order of [`Reason`]'s variants.
    pub reasons: [&'static str; 6],
    /// Per secret kind: api token, recovery codes, TOTP, password.
    pub secrets: [&'static str; 4],
}

const EN: Labels = Labels {
    username: "Username",
    lookup_address: "Account looked up by address",
    username_forgotten: "not remembered (see below)",
    reason: "Reason",
    email_access: "Access to the linked email address",
    code_of_conduct: "Agrees to the Code of Conduct",
    delay: "Understands review takes time",
    proofs: [
        "Package",
        "Repository",
        "Earlier address",
        "Account created",
    ],
    yes_no_ticked: ["yes", "no", "yes (ticked)"],
    fields: [
        (
            "Your account username",
            "the name you log in with, not your email address",
        ),
        (
            "Why you lost access",
            "for example a lost 2FA device, lost recovery codes or a forgotten password",
        ),
        (
            "Whether you can still read the email address linked to the account",
            "yes or no",
        ),
        ("That you agree to the Code of Conduct", ""),
        ("That you understand review can take a while", ""),
        (
            "Anything that shows the account is yours",
            "packages you maintain, earlier addresses, roughly when you created the account",
        ),
    ],
    reasons: [
        "lost two-factor device",
        "recovery codes lost or not working",
        "forgotten password",
        "lost access to the linked email address",
        "suspected compromise",
        "other",
    ],
    secrets: [
        "an API token",
        "recovery codes",
        "a two-factor (TOTP) secret",
        "a password",
    ],
};

const ES: Labels = Labels {
    username: "Nombre de usuario",
    lookup_address: "Cuenta buscada por dirección",
    username_forgotten: "no lo recuerdas (mira más abajo)",
    reason: "Motivo",
    email_access: "Acceso a la dirección de correo vinculada",
    code_of_conduct: "Acepta el Código de Conducta",
    delay: "Entiende que la revisión lleva tiempo",
    proofs: ["Paquete", "Repositorio", "Dirección anterior", "Cuenta creada"],
    yes_no_ticked: ["sí", "no", "sí (casilla marcada)"],
    fields: [
        ("El nombre de usuario de tu cuenta", "el nombre con el que inicias sesión, no tu dirección de correo"),
        ("Por qué perdiste el acceso", "por ejemplo, un dispositivo 2FA perdido, códigos de recuperación perdidos o una contraseña olvidada"),
        ("Si todavía puedes leer la dirección de correo vinculada a la cuenta", "sí o no"),
        ("Que aceptas el Código de Conducta", ""),
        ("Que entiendes que la revisión puede tardar", ""),
        ("Cualquier dato que muestre que la cuenta es tuya", "paquetes que mantienes, direcciones anteriores, cuándo creaste la cuenta aproximadamente"),
    ],
    reasons: [
        "dispositivo de doble factor perdido",
        "códigos de recuperación perdidos o que no funcionan",
        "contraseña olvidada",
        "sin acceso a la dirección de correo vinculada",
        "sospecha de acceso indebido",
        "otro",
    ],
    secrets: ["un token de API", "códigos de recuperación", "un secreto de doble factor (TOTP)", "una contraseña"],
};

/// A moment as a reader of `lang` writes it, always naming the time zone
/// (UTC: the one zone every reader can convert from), e.g. "Tuesday 1
/// December 2026, 10:00 UTC" or "martes 1 de diciembre de 2026, 10:00 (UTC)".
pub fn format_date(lang: &str, unix: i64) -> String {
    use chrono::{Datelike, Timelike};
    let Some(d) = chrono::DateTime::from_timestamp(unix, 0) else {
        return String::new();
    };
    let weekday = d.weekday().num_days_from_monday() as usize;
    let month = d.month0() as usize;
    match lang.split(['-', '_']).next().unwrap_or("") {
        "es" => {
            const DAYS: [&str; 7] = [
                "lunes",
                "martes",
                "miércoles",
                "jueves",
                "viernes",
                "sábado",
                "domingo",
            ];
            const MONTHS: [&str; 12] = [
                "enero",
                "febrero",
                "marzo",
                "abril",
                "mayo",
                "junio",
                "julio",
                "agosto",
                "septiembre",
                "octubre",
                "noviembre",
                "diciembre",
            ];
            format!(
                "{} {} de {} de {}, {:02}:{:02} (UTC)",
                DAYS[weekday],
                d.day(),
                MONTHS[month],
                d.year(),
                d.hour(),
                d.minute()
            )
        }
        _ => d.format("%A %-d %B %Y, %H:%M UTC").to_string(),
    }
}

/// What a field is, in the words of mail to staff ("whether they can
/// read the linked address", not the requester's "whether you can"),
/// lower case to sit inside a sentence. Staff read English.
pub fn staff_field(field: Field) -> &'static str {
    match field {
        Field::Username => "the username",
        Field::Reason => "the reason for the lockout",
        Field::EmailAccess => "whether they can read the linked address",
        Field::CodeOfConduct => "their agreement to the Code of Conduct",
        Field::DelayAcknowledged => "their acknowledgement that review takes time",
        Field::Proofs => "proofs of ownership",
    }
}

/// The labels for a language code (`es`, `es-MX`, ...); English otherwise.
pub fn for_lang(lang: &str) -> &'static Labels {
    match lang.split(['-', '_']).next().unwrap_or("") {
        "es" => &ES,
        _ => &EN,
    }
}

impl Labels {
    /// Label and hint of a field.
    pub fn field(&self, field: Field) -> (&'static str, &'static str) {
        let idx = Field::ALL.iter().position(|f| *f == field).unwrap_or(0);
        self.fields[idx]
    }

    /// Label of a reason.
    pub fn reason(&self, reason: Reason) -> &'static str {
        self.reasons[match reason {
            Reason::Lost2faDevice => 0,
            Reason::RecoveryCodesLostOrNotWorking => 1,
            Reason::ForgotPassword => 2,
            Reason::LostEmailAccess => 3,
            Reason::SuspectedCompromise => 4,
            Reason::Other => 5,
        }]
    }

    /// Label of a secret kind.
    pub fn secret(&self, kind: SecretKind) -> &'static str {
        self.secrets[match kind {
            SecretKind::ApiToken => 0,
            SecretKind::RecoveryCode => 1,
            SecretKind::TotpSeed => 2,
            SecretKind::Password => 3,
        }]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spanish_and_regional_spanish_get_spanish_labels() {
        assert_eq!(
            for_lang("es").reason(Reason::ForgotPassword),
            "contraseña olvidada"
        );
        assert_eq!(for_lang("es-MX").username, "Nombre de usuario");
    }

    #[test]
    fn dates_are_written_in_the_readers_language_with_the_time_zone() {
        // Tuesday 1 December 2026, 10:00 UTC.
        let t = 1_796_119_200;
        assert_eq!(format_date("en", t), "Tuesday 1 December 2026, 10:00 UTC");
        assert_eq!(
            format_date("es", t),
            "martes 1 de diciembre de 2026, 10:00 (UTC)"
        );
        assert_eq!(format_date("es-MX", t), format_date("es", t));
        assert_eq!(format_date("zh", t), format_date("en", t));
    }

    #[test]
    fn unknown_languages_fall_back_to_english() {
        assert_eq!(
            for_lang("zh").field(Field::Username).0,
            "Your account username"
        );
        assert_eq!(for_lang("").secret(SecretKind::ApiToken), "an API token");
    }
}
