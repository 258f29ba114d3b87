//! Why access was lost, several reasons at once, primary first.
//!
//! Each reason has one pattern in English, Chinese, Spanish, Portuguese,
//! French, German and Russian. The primary reason is the one named first,
//! in the form's reason section before the rest of the prose and the prose
//! before the subject; that is how people write ("I lost my phone, and the
//! recovery codes don't work either").

use once_cell::sync::Lazy;
use regex::Regex;

use super::sections::{Document, SectionKind};
use crate::request::Reason;

/// Phrases for "the second factor is gone".
const LOST_2FA: &str = r"(?:lost|lose|losing|broke|broken|stolen|reset|wiped|replaced|changed|new|died|dead|damaged|factory|switched|upgraded|no\s+longer\s+have|don'?t\s+have|can'?t\s+(?:access|find|open|use)|cannot\s+(?:access|find|open|use)|lost\s+access\s+to|no\s+access\s+to|without)\s+(?:\w+\s+){0,3}?(?:phone|fone|smartphone|iphone|android|mobile|device|authenticator|auth\s+app|2fa|two[-\s]factor|mfa|totp|otp|security\s+key|yubikey|hardware\s+key|webauthn|google\s+authenticator|authy)|(?:phone|device|authenticator(?:\s+app)?|2fa\s+(?:app|device)|security\s+key|yubikey)\s+(?:was\s+|got\s+|is\s+|has\s+been\s+)?(?:lost|stolen|broken|broke|reset|wiped|died|dead|damaged|gone|deleted|uninstalled|removed|crashed|corrupted|stopped\s+working)|lost\s+(?:my\s+)?2fa|2fa\s+(?:device|app)\s+(?:lost|gone)|(?:me\s+robaron|robaron|me\s+roubaram|roubaram|cambié\s+de|troquei\s+de|on\s+m'a\s+volé|j'ai\s+changé\s+de|украли|сменил\w*|поменял\w*|новый)\s+(?:\w+\s+){0,2}?(?:teléfono|telefone|celular|móvil|movil|dispositivo|téléphone|telephone|portable|телефон\w*|устройств\w*)|(?:neues|neuen)\s+(?:handy|telefon|smartphone)|(?:handy|telefon)\s+gewechselt|(?:perdí|perdi|roubad[oa]|robad[oa])\s+(?:\w+\s+){0,2}?(?:teléfono|telefone|celular|móvil|movil|dispositivo|autenticador|llave|chave)|(?:teléfono|celular|móvil|telefone|dispositivo)\s+(?:fue\s+|fui\s+|fo[io]\s+)?(?:robad[oa]|perdid[oa]|rot[oa]|quebrad[oa]|roubad[oa])|perdu\s+(?:\w+\s+){0,2}?(?:téléphone|telephone|portable|appareil|authentificateur|clé)|(?:téléphone|portable)\s+(?:a\s+été\s+)?(?:volé|perdu|cassé)|(?:handy|telefon|smartphone|gerät|authenticator|sicherheitsschlüssel)\s+(?:\w+\s+){0,3}?(?:verloren|gestohlen|kaputt|defekt|zurückgesetzt|gelöscht)|verloren\s+(?:\w+\s+){0,2}?(?:handy|telefon|gerät)|потерял\w*\s+(?:\w+\s+){0,2}?(?:телефон|устройств\w*|аутентификатор|ключ)|(?:телефон|устройство)\s+(?:\w+\s+){0,2}?(?:потерян|украден|сломан|сброшен)|(?:丢|丟|掉|坏|壞|被偷|遗失|遺失|换了|換了)\S{0,6}(?:手机|手機|设备|設備|验证器|驗證器)|(?:手机|手機|设备|設備)\S{0,4}(?:丢|丟|坏|壞|被偷|遗失|遺失)|(?:无法|不能|没法)\S{0,8}(?:验证器|身份验证|两步验证|双重验证|双因素|二次验证|2fa)";

/// Phrases for "the recovery codes are lost or rejected".
const RECOVERY_CODES: &str = r"(?:recovery|backup)\s+codes?\s+(?:\S+\s+){0,4}?(?:not\s+work|don'?t\s+work|do\s+not\s+work|doesn'?t\s+work|does\s+not\s+work|didn'?t\s+work|did\s+not\s+work|aren'?t\s+working|are\s+not\s+working|invalid|rejected|not\s+accepted|lost|gone|failed|fail|expired|used)|(?:lost|lose|misplaced|never\s+(?:saved|stored|downloaded|generated|got|received)|didn'?t\s+(?:save|store|download|keep)|did\s+not\s+(?:save|store|download|keep)|don'?t\s+have|do\s+not\s+have|no\s+longer\s+have|can'?t\s+find|cannot\s+find|no)\s+(?:\w+\s+){0,3}?(?:recovery|backup)\s+codes?|(?:códigos?\s+de\s+(?:recuperación|recuperacion|recuperação|respaldo|backup)|codes?\s+de\s+(?:récupération|secours)|wiederherstellungscode\w*|backup-codes?|(?:коды?|кодов)\s+(?:\w+\s+)?восстановления|резервн\w+\s+код\w*)\s+(?:\S+\s+){0,4}?(?:no\s+funciona\w*|inválid\w*|rechazad\w*|perdid\w*|não\s+funciona\w*|ne\s+(?:\S+\s+)?(?:fonctionn|march)\w*|invalides?|refusés?|perdus?|funktionier\w*\s+nicht|nicht\s+(?:mehr\s+)?(?:funktionier|akzeptiert|gespeichert)\w*|ungültig|verloren|abgelehnt|не\s+(?:работа|подход|принима)\w*|недействительн\w*|потерян\w*)|(?:perdí|no\s+tengo|sin|perdi|não\s+tenho|sem|perdu|pas\s+de|plus\s+de|keine|verloren|нет|потерял\w*)\s+(?:\w+\s+){0,2}?(?:códigos?\s+de\s+(?:recuperación|recuperacion|recuperação)|codes?\s+de\s+(?:récupération|secours)|wiederherstellungscode\w*|backup-codes?|код\w*\s+восстановления|резервн\w+\s+код\w*)|(?:恢复码|恢復碼|恢复代码|备用码|備用碼|救援码)\S{0,6}(?:不能|无法|無法|失效|无效|無效|丢|丟|找不到|没有|不对)|(?:没有|丢了|丢失|找不到|没保存|沒有)\S{0,4}(?:恢复码|恢復碼|恢复代码|备用码|備用碼)";

/// Phrases for a forgotten password.
const FORGOT_PASSWORD: &str = r"(?:forgot|forgotten|forget|lost|can'?t\s+remember|cannot\s+remember|don'?t\s+remember|do\s+not\s+remember|reset)\s+(?:\w+\s+){0,2}?password|password\s+(?:\w+\s+){0,2}?(?:forgotten|reset|lost)|olvidé\s+(?:\w+\s+)?contraseña|contraseña\s+olvidada|esqueci\s+(?:\w+\s+)?senha|mot\s+de\s+passe\s+oublié|oublié\s+(?:\w+\s+){0,2}?mot\s+de\s+passe|passwort\s+vergessen|kennwort\s+vergessen|забыл\w*\s+(?:\w+\s+)?пароль|忘记\S{0,2}密码|忘記\S{0,2}密碼|密码忘";

/// Phrases for a linked address the requester no longer reads.
const LOST_EMAIL: &str = r"(?:lost|no\s+longer\s+have|don'?t\s+have|do\s+not\s+have|no)\s+access\s+to\s+(?:\w+\s+){0,3}?(?:e-?mail|mailbox|inbox|address)|(?:e-?mail|mailbox|address|domain)\s+(?:\S+\s+){0,5}?(?:no\s+longer\s+(?:exists|works|active|valid)|(?:was|is|has\s+been)\s+(?:deleted|closed|deactivated|disabled|expired|shut\s+down)|expired)|(?:can'?t|cannot|unable\s+to)\s+(?:access|log\s*in\s+to|get\s+into|receive|get|read)\s+(?:\w+\s+){0,3}?(?:(?:e-?)?mails?\b|mailbox|inbox)|(?:old|former|previous)\s+(?:work|university|school|company|employer'?s?)\s+(?:e-?mail|address)|left\s+(?:the|my)\s+(?:company|job|university)|(?:company|employer|university|school|job)\s+(?:that\s+)?i\s+(?:have\s+)?left|(?:correo|e-?mail)\s+(?:\w+\s+){0,6}?(?:ya\s+no\s+(?:existe|tengo|funciona)|no\s+tengo\s+acceso|já\s+não\s+existe|não\s+existe\s+mais)|(?:perdí|sin)\s+(?:el\s+)?acceso\s+(?:a\s+)?(?:mi\s+)?(?:correo|e-?mail)|(?:perdi|sem)\s+(?:o\s+)?acesso\s+(?:ao\s+)?(?:meu\s+)?e-?mail|não\s+tenho\s+mais\s+acesso\s+ao\s+(?:meu\s+)?e-?mail|(?:plus|pas)\s+accès\s+à\s+(?:mon\s+|l')?(?:adresse|e-?mail|courriel|boîte)|keinen\s+zugriff\s+(?:mehr\s+)?auf\s+(?:meine\s+)?(?:e-?mail|mailadresse|postfach)|нет\s+доступа\s+к\s+(?:\w+\s+)?(?:почте|email|ящику)|потерял\w*\s+доступ\s+к\s+(?:\w+\s+)?(?:почте|ящику)|(?:邮箱|郵箱|电子邮件|電子郵件)\S{0,8}(?:无法|不能|丢失|失效|不再|没有权限|登录不了)";

/// Phrases for signs that someone else changed the account.
const COMPROMISE: &str = r"without\s+my\s+(?:knowledge|consent|permission)|(?:i|we)\s+(?:did\s+not|didn'?t)\s+(?:request|authori[sz]e|make|do|initiate|ask\s+for)\s+(?:this|that|these|those|the|any|it)\b|(?:i|we)\s+(?:did\s+not|didn'?t)\s+(?:add|change|reset|regenerate)\s+(?:\S+\s+){0,3}?(?:recovery\s+codes?|codes?|password|e-?mail|address|2fa|two[-\s]factor|device|authenticator|security\s+key|token)|(?:i|we)\s+never\s+(?:changed|reset|regenerated|requested|added)\s+(?:\S+\s+){0,3}?(?:recovery\s+codes?|codes?|password|e-?mail|address|2fa|device)|(?:2fa|two[-\s]factor|mfa|authenticator|device|recovery\s+codes?|codes|email|password)\s+(?:that\s+|which\s+)?(?:i|we)\s+(?:did\s+not|didn'?t|never)\s+(?:add|enable|change|create|generate|request)|someone\s+(?:else\s+)?(?:has\s+)?(?:changed|added|reset|logged|accessed|took|enabled|removed|hijacked|got)|hack(?:ed|er)|compromised|unauthori[sz]ed|account\s+(?:takeover|was\s+taken\s+over|stolen)|(?:was|wasn'?t)\s+not\s+me|wasn'?t\s+me|suspicious\s+(?:activity|login|change|email)|sin\s+mi\s+(?:conocimiento|consentimiento|permiso)|no\s+fui\s+yo|hackead[oa]|sem\s+(?:o\s+)?meu\s+(?:conhecimento|consentimento)|não\s+fui\s+eu|à\s+mon\s+insu|sans\s+mon\s+(?:accord|consentement)|piraté|ohne\s+mein\s+(?:wissen|zutun|einverständnis)|gehackt|без\s+моего\s+(?:ведома|согласия)|взлом\w*|被盗|被黑|被入侵|不是我|未经\S{0,4}(?:授权|许可|同意)|我没有\S{0,4}(?:添加|设置|修改|更改)";

/// Phrases the form template offers as options and people paste as is.
const OTHER: &str = r"\bother\b|\botro\b|\boutro\b|\bautre\b|\bandere[rs]?\b|другое|其他";

static PATTERNS: Lazy<Vec<(Reason, Regex)>> = Lazy::new(|| {
    [
        (Reason::SuspectedCompromise, COMPROMISE),
        (Reason::Lost2faDevice, LOST_2FA),
        (Reason::RecoveryCodesLostOrNotWorking, RECOVERY_CODES),
        (Reason::ForgotPassword, FORGOT_PASSWORD),
        (Reason::LostEmailAccess, LOST_EMAIL),
    ]
    .into_iter()
    .map(|(reason, pattern)| {
        (
            reason,
            Regex::new(&format!("(?i){pattern}")).expect("valid regex"),
        )
    })
    .collect()
});

static OTHER_RE: Lazy<Regex> =
    Lazy::new(|| Regex::new(&format!("(?i){OTHER}")).expect("valid regex"));

/// Reasons named in the reason section, the prose, then the subject.
pub(super) fn find(doc: &Document, subject: &str) -> Vec<Reason> {
    let mut reasons = Vec::new();
    for text in [doc.prose.as_str(), subject] {
        let mut hits: Vec<(usize, Reason)> = PATTERNS
            .iter()
            .filter_map(|(reason, re)| re.find(text).map(|m| (m.start(), *reason)))
            .collect();
        hits.sort();
        for (_, reason) in hits {
            if !reasons.contains(&reason) {
                reasons.push(reason);
            }
        }
    }
    // A reason section whose answer matched nothing still states a reason.
    let answer = doc.answers(SectionKind::Reason);
    if reasons.is_empty() && (OTHER_RE.is_match(&answer) || answer.trim().chars().count() >= 10) {
        reasons.push(Reason::Other);
    }
    reasons
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reasons(text: &str) -> Vec<Reason> {
        find(&Document::parse(text), "")
    }

    #[test]
    fn the_first_named_reason_is_primary() {
        assert_eq!(
            reasons("My recovery codes don't work and I lost my phone."),
            vec![Reason::RecoveryCodesLostOrNotWorking, Reason::Lost2faDevice]
        );
    }

    #[test]
    fn codes_reset_without_my_knowledge_is_a_compromise() {
        let r = reasons(
            "My recovery codes were reset without my knowledge and there is a 2FA I did not add.",
        );
        assert_eq!(r[0], Reason::SuspectedCompromise);
    }

    #[test]
    fn not_having_set_something_up_is_no_compromise() {
        for text in [
            "I never set up 2FA and forgot my password.",
            "I forgot my password for PyPI and I never set up 2FA.",
            "I didn't save my recovery codes.",
            "I did not generate recovery codes when I enabled 2FA.",
            "I never enabled 2FA.",
        ] {
            assert!(
                !reasons(text).contains(&Reason::SuspectedCompromise),
                "{text}"
            );
        }
        for text in [
            "I didn't change my email, someone did.",
            "I did not request this reset.",
            "There is a 2FA device I did not add.",
        ] {
            assert_eq!(
                reasons(text).first(),
                Some(&Reason::SuspectedCompromise),
                "{text}"
            );
        }
    }

    #[test]
    fn reasons_are_read_in_seven_languages() {
        let cases = [
            ("I forgot my password", Reason::ForgotPassword),
            ("我的手机丢了", Reason::Lost2faDevice),
            ("Perdí mi teléfono", Reason::Lost2faDevice),
            ("Esqueci minha senha", Reason::ForgotPassword),
            ("J'ai perdu mon téléphone", Reason::Lost2faDevice),
            ("Mein Handy wurde gestohlen", Reason::Lost2faDevice),
            ("Я потерял телефон", Reason::Lost2faDevice),
            ("Я забыл пароль", Reason::ForgotPassword),
            ("Me robaron el móvil", Reason::Lost2faDevice),
            ("Украли телефон", Reason::Lost2faDevice),
            ("Ich habe ein neues Handy", Reason::Lost2faDevice),
            (
                "Meine Wiederherstellungscodes funktionieren nicht",
                Reason::RecoveryCodesLostOrNotWorking,
            ),
            (
                "Los códigos de recuperación no funcionan",
                Reason::RecoveryCodesLostOrNotWorking,
            ),
            (
                "Mes codes de récupération ne fonctionnent pas",
                Reason::RecoveryCodesLostOrNotWorking,
            ),
            (
                "我的恢复码都不能用了",
                Reason::RecoveryCodesLostOrNotWorking,
            ),
            (
                "Коды восстановления не работают",
                Reason::RecoveryCodesLostOrNotWorking,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(reasons(text).first(), Some(&want), "{text}");
        }
    }

    #[test]
    fn an_unclassified_reason_answer_is_other() {
        assert_eq!(
            reasons("### Reason for request\n\nSomething odd with my login flow"),
            vec![Reason::Other]
        );
        assert_eq!(reasons("Hello there"), vec![]);
    }
}
