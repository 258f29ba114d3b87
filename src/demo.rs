//! `recoverydesk demo`: a folder with a Maildir of sample requests (the two
//! seed scenarios, a reply, a duplicate, the linked mailbox's answer and a
//! staff reply), a file account directory, a key and the embedded config.
//! Pure data and file writing; the CLI runs the worker over it.

use std::path::Path;

use crate::error::{Error, Result};
use crate::source::maildir::deliver;

/// The demo's account directory.
pub const ACCOUNTS: &str = r#"# The demo's account directory: where linked addresses come from.
[[account]]
username = "iineolineii"
addresses = [{ address = "iineolineii@mailbox.example", verified = true, primary = true }]
two_factor = ["totp"]
has_recovery_codes = true
projects = ["iineo-utils"]

[[account]]
username = "pwforgetter"
addresses = [{ address = "pw.forgetter@mailbox.example", verified = true, primary = true }]
two_factor = []
projects = ["tiny-parser"]
"#;

/// The first seed: lost 2FA app, recovery codes rejected, maybe reset.
pub const SEED_2FA: &str = "From: Iineo Lineii <iineolineii@gmail.example>\r
To: PyPI Support <support@pypi.example>\r
Subject: Account recovery: lost 2FA, recovery codes not working\r
Message-ID: <seed-2fa-1@gmail.example>\r
Date: Mon, 23 Nov 2026 09:00:00 +0000\r
Content-Type: text/plain; charset=utf-8\r
\r
### PyPI Username\r
\r
`iineolineii`\r
\r
### Reason for recovery\r
\r
I lost access to my 2FA authentication app and my recovery codes are not\r
working. I think the recovery codes were reset without my knowledge.\r
\r
### Access to account credentials\r
\r
I still have access to the username, the password and the linked email address.\r
\r
### Code of Conduct\r
\r
- [x] I agree to follow the PSF Code of Conduct\r
\r
### Acknowledgement\r
\r
- [x] I acknowledge that it may take a significant amount of time to process this request\r
";

/// The second seed: forgot the password, never set up 2FA; leaves fields out.
pub const SEED_PASSWORD: &str = "From: Pat Forgetter <pat@home.example>\r
To: support@pypi.example\r
Subject: Forgot my password\r
Message-ID: <seed-pw-1@home.example>\r
Date: Mon, 23 Nov 2026 09:05:00 +0000\r
Content-Type: text/plain; charset=utf-8\r
\r
Hi,\r
\r
I forgot my password for PyPI and I never set up 2FA. My username is pwforgetter.\r
Can you help me reset it?\r
\r
Thanks,\r
Pat\r
";

/// Writes the demo folder; refuses to overwrite a folder that has a config.
pub fn create(dir: &Path, secret: &str) -> Result<()> {
    let config = dir.join("config.toml");
    if config.exists() {
        return Err(Error::Config(format!(
            "{} already exists; remove the folder or pick another with --dir",
            config.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let write = |name: &str, text: &str| -> Result<()> {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
    };
    write("config.toml", crate::config::DEMO_TOML)?;
    write("accounts.toml", ACCOUNTS)?;
    write("secret.key", secret)?;
    // The installation key is for recoverydesk's user alone.
    let key = dir.join("secret.key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .map_err(|e| Error::io(&key, e))?;
    let inbox = dir.join("mail/inbox");
    deliver(&inbox, SEED_2FA.as_bytes(), "1763888400.seed2fa.demo")?;
    deliver(&inbox, SEED_PASSWORD.as_bytes(), "1763888700.seedpw.demo")?;
    Ok(())
}

/// The second round of demo mail, written after the first pass so it can
/// answer what recoverydesk sent: a reply with the missing fields, a
/// duplicate request, and the linked mailbox's "yes".
pub fn follow_up_mail(
    pw_ack_id: &str,
    pw_reply_to: &str,
    challenge_reply_to: &str,
) -> Vec<(String, String)> {
    let reply = format!(
        "From: Pat Forgetter <pat@home.example>\r\nTo: {pw_reply_to}\r\nSubject: Re: Forgot my password\r\n\
Message-ID: <seed-pw-2@home.example>\r\nIn-Reply-To: <{pw_ack_id}>\r\nReferences: <seed-pw-1@home.example> <{pw_ack_id}>\r\n\
Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\n\
Yes, I still have access to the email address on the account.\r\n\
I agree to the Code of Conduct and I understand this can take a while.\r\n\r\n\
On Mon, 23 Nov 2026, PyPI Support wrote:\r\n> We need a few more details\r\n"
    );
    let duplicate = "From: Iineo Lineii <iineolineii@gmail.example>\r\nTo: support@pypi.example\r\n\
Subject: PLEASE HELP - locked out of PyPI\r\nMessage-ID: <seed-2fa-2@gmail.example>\r\n\
Date: Mon, 23 Nov 2026 10:05:00 +0000\r\n\r\n\
Hello again, I sent a request this morning about my account iineolineii. I am still locked out.\r\n"
        .to_string();
    let owner_yes = format!(
        "From: Iineo Lineii <iineolineii@mailbox.example>\r\nTo: {challenge_reply_to}\r\n\
Subject: Re: Was this you?\r\nMessage-ID: <seed-owner-yes@mailbox.example>\r\n\
Date: Mon, 23 Nov 2026 10:10:00 +0000\r\n\r\nYes, that was me.\r\n"
    );
    vec![
        ("1763892000.pwreply.demo".into(), reply),
        ("1763892300.dup.demo".into(), duplicate),
        ("1763892600.owneryes.demo".into(), owner_yes),
    ]
}

/// A staff reply as a mail client writes it, stamped by the trusted MTA.
pub fn staff_reply(case_reply_to: &str, parent_id: &str) -> (String, String) {
    let text = format!(
        "Authentication-Results: mx.pypi.example; dmarc=pass header.from=pypi.example; dkim=pass header.d=pypi.example\r\n\
From: Ada Admin <admin@pypi.example>\r\nTo: {case_reply_to}\r\nSubject: Re: New case\r\n\
Message-ID: <staff-1@pypi.example>\r\nIn-Reply-To: <{parent_id}>\r\nDate: Mon, 23 Nov 2026 11:00:00 +0000\r\n\r\n\
/assign me\r\n\
Thanks for confirming. We have reset the second factor on your account; you can now log in\r\n\
with your password and set up 2FA again. Please store the new recovery codes safely.\r\n\r\n\
On Mon, 23 Nov 2026, PyPI Support wrote:\r\n> New case\r\n"
    );
    ("1763896000.staff.demo".into(), text)
}
