//! Staff commands written on their own lines in a reply (`/note`, `/close`,
//! ...), and the text to relay to the requester.
//!
//! Pure; never panics.
//!
//! # Where commands are read
//! Only the **leading block** counts: after any blank lines, every line that
//! starts with `/` and a command word (letters only, e.g. `/close`) is a
//! command, blank lines between them included. The first other line ends the
//! block; everything from there on is text for the requester. So a path such
//! as `/usr/bin/python` in prose, or even at the top (its first word is not
//! letters only), is just text.
//!
//! A **known** command word on its own line *after* the text (`/close` at
//! the bottom of a reply) is an error, not text: relaying it would show the
//! requester an instruction meant for the desk, and silently running it
//! would surprise the writer. The staff member is told to put it at the top.
//!
//! `/note` takes the rest of its line and the whole rest of the message as
//! an internal note; nothing is relayed. Command words are case-insensitive.
//! When [`StaffMessage::errors`] is not empty, [`StaffMessage::relay_text`]
//! is empty too, so an error can never leak half a message.

use serde::{Deserialize, Serialize};

use crate::domain::Priority;
use crate::request::Field;

/// One staff command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// An internal note: the text after `/note` (and following lines).
    Note {
        /// The note text.
        text: String,
    },
    /// Close the case, optionally with a reason.
    Close {
        /// Why, as written.
        reason: Option<String>,
    },
    /// Send the resolution template, then close.
    Resolve,
    /// Issue or resend the verification challenge.
    Verify,
    /// Ask the requester for exactly these fields.
    Ask {
        /// The fields to ask for.
        fields: Vec<Field>,
    },
    /// Reopen a closed case.
    Reopen,
    /// Set the priority.
    Priority {
        /// The new priority.
        priority: Priority,
    },
    /// Assign the case to the sender.
    AssignMe,
}

/// A staff message split into commands, text to relay, and errors.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffMessage {
    /// Commands in the order written.
    pub commands: Vec<Command>,
    /// Text for the requester (empty when there is nothing to relay).
    pub relay_text: String,
    /// Unknown or malformed commands, explained; when any, nothing is relayed
    /// and callers should run none of the commands either (the writer fixes
    /// the message and sends it again).
    pub errors: Vec<String>,
    /// True when the message is internal (`/note`): nothing goes to the
    /// requester.
    #[serde(default)]
    pub internal: bool,
}

impl StaffMessage {
    /// True when every command was understood.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }
}

/// The command words, for explanations and for spotting misplaced commands.
pub const COMMAND_WORDS: [&str; 8] = [
    "note", "close", "resolve", "verify", "ask", "reopen", "priority", "assign",
];

/// Parses a staff message's new text (quotes already stripped).
pub fn parse(new_text: &str) -> StaffMessage {
    let mut message = StaffMessage::default();
    let lines: Vec<&str> = new_text.lines().collect();
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index].trim();
        if line.is_empty() {
            index += 1;
            continue;
        }
        let Some((word, args)) = command_line(line) else {
            break;
        };
        if word == "note" {
            let mut note: Vec<&str> = Vec::new();
            if !args.is_empty() {
                note.push(args);
            }
            note.extend(lines[index + 1..].iter().copied());
            message.commands.push(Command::Note {
                text: note.join("\n").trim().to_string(),
            });
            message.internal = true;
            index = lines.len();
            break;
        }
        match command(&word, args) {
            Ok(command) => message.commands.push(command),
            Err(error) => message.errors.push(error),
        }
        index += 1;
    }

    let rest = &lines[index.min(lines.len())..];
    for line in rest {
        if let Some((word, _)) = command_line(line.trim()) {
            if COMMAND_WORDS.contains(&word.as_str()) {
                message.errors.push(format!(
                    "/{word} must be on its own line at the top of the reply, before any text; nothing was sent"
                ));
            }
        }
    }
    if !message.internal && message.errors.is_empty() {
        let text = rest.join("\n").trim().to_string();
        // Commands followed only by a signature (RFC 3676 §4.3 `-- `
        // delimiter) leave nothing to say to the requester.
        let only_signature = text.lines().next().is_some_and(|l| l.trim_end() == "--");
        if !only_signature {
            message.relay_text = text;
        }
    }
    message
}

/// Splits `/word args` into the lower-cased word and its arguments, when the
/// line is command-shaped: `/` then letters (and `-`/`_`), then a space or
/// the end. `/usr/bin` is not command-shaped.
fn command_line(line: &str) -> Option<(String, &str)> {
    let body = line.strip_prefix('/')?;
    let end = body.find(char::is_whitespace).unwrap_or(body.len());
    let word = &body[..end];
    let first_is_letter = word.chars().next().is_some_and(|c| c.is_ascii_alphabetic());
    if !first_is_letter
        || !word
            .chars()
            .all(|c| c.is_ascii_alphabetic() || c == '-' || c == '_')
    {
        return None;
    }
    Some((word.to_ascii_lowercase(), body[end..].trim()))
}

/// Builds one command (other than `/note`) or explains what is wrong.
fn command(word: &str, args: &str) -> Result<Command, String> {
    let no_args = |command: Command| {
        if args.is_empty() {
            Ok(command)
        } else {
            Err(format!(
                "/{word} takes no arguments (got \"{}\")",
                shorten(args)
            ))
        }
    };
    match word {
        "close" => Ok(Command::Close {
            reason: (!args.is_empty()).then(|| args.to_string()),
        }),
        "resolve" => no_args(Command::Resolve),
        "verify" => no_args(Command::Verify),
        "reopen" => no_args(Command::Reopen),
        "ask" => ask(args),
        "priority" => match args.to_ascii_lowercase().as_str() {
            "high" => Ok(Command::Priority {
                priority: Priority::High,
            }),
            "normal" => Ok(Command::Priority {
                priority: Priority::Normal,
            }),
            "" => Err("/priority needs a level: /priority high or /priority normal".into()),
            other => Err(format!(
                "unknown priority \"{}\": use /priority high or /priority normal",
                shorten(other)
            )),
        },
        "assign" => {
            if args.eq_ignore_ascii_case("me") {
                Ok(Command::AssignMe)
            } else {
                Err("only /assign me is supported".into())
            }
        }
        other => Err(format!(
            "unknown command /{}; known: /{}",
            shorten(other),
            COMMAND_WORDS.join(", /")
        )),
    }
}

/// `/ask username, reason proofs`: comma- or space-separated field codes.
fn ask(args: &str) -> Result<Command, String> {
    let mut fields = Vec::new();
    let mut unknown = Vec::new();
    for code in args
        .split(|c: char| c == ',' || c == ';' || c.is_whitespace())
        .filter(|c| !c.is_empty())
    {
        match Field::parse(code) {
            Some(field) if !fields.contains(&field) => fields.push(field),
            Some(_) => {}
            None => unknown.push(shorten(code)),
        }
    }
    let known: Vec<&str> = Field::ALL.iter().map(|f| f.code()).collect();
    if !unknown.is_empty() {
        return Err(format!(
            "/ask: unknown field {}; known: {}",
            unknown.join(", "),
            known.join(", ")
        ));
    }
    if fields.is_empty() {
        return Err(format!(
            "/ask needs at least one field: {}",
            known.join(", ")
        ));
    }
    Ok(Command::Ask { fields })
}

/// At most 40 characters of user text in an explanation.
fn shorten(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((idx, _)) => format!("{}…", &text[..idx]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_reply_is_relayed() {
        let m = parse("Hello Jo,\n\nwe have reset your 2FA.\n");
        assert!(m.commands.is_empty() && m.is_ok() && !m.internal);
        assert_eq!(m.relay_text, "Hello Jo,\n\nwe have reset your 2FA.");
    }

    #[test]
    fn each_command() {
        let m = parse(
            "/close duplicate of RD-7K3M9Q\n/RESOLVE\n/verify\n/ask username, reason proofs\n/reopen\n/priority High\n/assign me\n\nThanks for writing.\n",
        );
        assert!(m.is_ok(), "{:?}", m.errors);
        assert_eq!(
            m.commands,
            vec![
                Command::Close {
                    reason: Some("duplicate of RD-7K3M9Q".into())
                },
                Command::Resolve,
                Command::Verify,
                Command::Ask {
                    fields: vec![Field::Username, Field::Reason, Field::Proofs]
                },
                Command::Reopen,
                Command::Priority {
                    priority: Priority::High
                },
                Command::AssignMe,
            ]
        );
        assert_eq!(m.relay_text, "Thanks for writing.");
        assert_eq!(
            parse("/close").commands,
            vec![Command::Close { reason: None }]
        );
        assert_eq!(
            parse("/priority normal").commands,
            vec![Command::Priority {
                priority: Priority::Normal
            }]
        );
    }

    #[test]
    fn note_makes_everything_internal() {
        let m = parse(
            "/priority high\n/note checked the packages\nThey own foo on the index.\n/close\n",
        );
        assert!(m.internal && m.is_ok());
        assert_eq!(m.relay_text, "");
        assert_eq!(
            m.commands,
            vec![
                Command::Priority {
                    priority: Priority::High
                },
                Command::Note {
                    text: "checked the packages\nThey own foo on the index.\n/close".into()
                },
            ]
        );
    }

    #[test]
    fn unknown_and_malformed_commands_relay_nothing() {
        for text in [
            "/frobnicate\nHello",
            "/ask usernme\nHi",
            "/ask\nHi",
            "/priority urgent\nHi",
            "/assign bob\nHi",
            "/resolve now\nHi",
        ] {
            let m = parse(text);
            assert!(!m.errors.is_empty(), "{text}");
            assert_eq!(m.relay_text, "", "{text}");
        }
        assert!(parse("/ask usernme").errors[0].contains("usernme"));
    }

    #[test]
    fn paths_in_prose_are_text() {
        let m = parse("Please run\n/usr/bin/pip install x\nand reply.\n/etc/hosts is fine too.");
        assert!(m.is_ok() && m.commands.is_empty(), "{m:?}");
        assert!(m.relay_text.contains("/usr/bin/pip"));
        let top = parse("/usr/local/bin is where it lives.");
        assert!(top.is_ok() && top.commands.is_empty());
        assert_eq!(top.relay_text, "/usr/local/bin is where it lives.");
    }

    #[test]
    fn command_after_text_is_an_error_not_text() {
        let m = parse("Hi Jo, all done.\n/close\n");
        assert!(!m.is_ok());
        assert_eq!(m.relay_text, "");
        // An unknown slash word after text is just prose.
        let m = parse("Hi Jo,\n/shrug\n");
        assert!(m.is_ok());
    }

    #[test]
    fn commands_followed_by_a_signature_relay_nothing() {
        let m = parse("/close\n\n-- \nAnn, PyPI support\n");
        assert!(m.is_ok());
        assert_eq!(m.commands, vec![Command::Close { reason: None }]);
        assert_eq!(m.relay_text, "");
        let m = parse("Done.\n-- \nAnn");
        assert_eq!(m.relay_text, "Done.\n-- \nAnn");
    }

    #[test]
    fn odd_input_does_not_panic() {
        for text in [
            "",
            "/",
            "//",
            "/é",
            "/close\u{0}",
            "\n\n/ask ,,,",
            "/note",
            "/ЗАКРЫТЬ",
        ] {
            let _ = parse(text);
        }
        assert_eq!(
            parse("/note").commands,
            vec![Command::Note {
                text: String::new()
            }]
        );
    }
}
