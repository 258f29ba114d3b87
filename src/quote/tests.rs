use super::*;

#[test]
fn a_gmail_attribution_ends_the_new_text() {
    let body = "Here is my username: jodoe\n\nOn Mon, 2 Nov 2026 at 10:00, Support <support@x.org> wrote:\n> Please send your username";
    assert_eq!(new_text(body, None), "Here is my username: jodoe");
}

#[test]
fn an_attribution_split_over_two_lines_is_found() {
    let body =
        "Thanks\n\nOn Mon, Aug 26, 2019 at 4:37 PM The Desk <\nsupport@x.org> wrote:\n\n> old";
    assert_eq!(new_text(body, None), "Thanks");
}

#[test]
fn french_german_and_russian_attributions_are_found() {
    for header in [
        "Le 15 janv. 2024 à 14:30, Pierre <p@x.fr> a écrit :",
        "Am 14.01.2024 um 10:00 schrieb Hans <h@x.de>:",
        "ср, 30 апр. 2025 г. в 15:19, John Doe <doe@example.com>:",
        "2025年4月30日 15:19 <a@b.cn> 写道：",
    ] {
        let body = format!("Nouveau texte\n\n{header}\n> ancien");
        assert_eq!(new_text(&body, None), "Nouveau texte", "{header}");
    }
}

#[test]
fn an_outlook_block_ends_the_new_text() {
    let body = "New words\n________________________________\nFrom: Desk <d@x.org>\nSent: Monday\nTo: me\nSubject: hi\n\nold text";
    assert_eq!(new_text(body, None), "New words");
}

#[test]
fn a_letter_that_starts_with_its_own_headers_is_kept() {
    let body = "From: Jo Doe <jo@example.org>\nTo: Support\nSubject: Account recovery\n\nMy username is jodoe.";
    assert_eq!(new_text(body, None), body);
    let fwd = "---------- Forwarded message ---------\nFrom: Index <noreply@index.example>\nDate: Mon\nSubject: New recovery codes\nTo: jo\n\nNew recovery codes for your account 'jodoe' have been generated.";
    assert!(new_text(fwd, None).contains("account 'jodoe'"));
}

#[test]
fn original_message_separators_end_the_new_text() {
    let body = "Neu\n\n-----Ursprüngliche Nachricht-----\nVon: a\nold";
    assert_eq!(new_text(body, None), "Neu");
}

#[test]
fn phone_footers_and_signatures_are_dropped() {
    assert_eq!(new_text("Hi\n\nSent from my iPhone", None), "Hi");
    assert_eq!(new_text("Hi\n-- \nJo Doe\n+1 555", None), "Hi");
    // Closing words and a name are the sender's own (a card under them
    // is not: see the signature-block test).
    assert_eq!(
        new_text("Hi\n\nBest regards,\nJo", None),
        "Hi\n\nBest regards,\nJo"
    );
}

#[test]
fn prose_that_resembles_headers_is_kept() {
    let body = "On the other hand, I wrote to you before.\nThe data comes from: our database.\nIt was sent from my phone app to you.";
    assert_eq!(new_text(body, None), body);
}

#[test]
fn a_bottom_posted_answer_under_a_greeting_is_kept() {
    let body = "Hi,\nOn Tue, 2011-03-01 at 18:02 +0530, Desk wrote:\n> old\n\nMy username is jodoe";
    assert_eq!(new_text(body, None), "Hi,\n\nMy username is jodoe");
}

#[test]
fn inline_answers_under_an_attribution_keep_their_questions() {
    let body = "On Dec 15, 2024, at 2:00 PM, Desk <d@x.org> wrote:\n> Username?\n\njodoe\n\n> Reason?\n\nlost phone";
    // Each inline answer keeps the question it answers.
    assert_eq!(
        new_text(body, None),
        "> Username?\n\njodoe\n\n> Reason?\n\nlost phone"
    );
}

#[test]
fn code_fences_protect_their_content() {
    let body = "See:\n```\n--\nSent from my mailer\n```\nend";
    assert_eq!(new_text(body, None), body);
}

#[test]
fn html_blockquotes_and_gmail_quotes_are_dropped() {
    let html = "<div>My username is jodoe</div><div class=\"gmail_quote\"><div class=\"gmail_attr\">On Mon wrote:</div><blockquote>old <div>x</div></blockquote></div>";
    let plain = mail_parser::decoders::html::html_to_text(html);
    assert_eq!(new_text(&plain, Some(html)), "My username is jodoe");
}

#[test]
fn an_outlook_html_reply_is_cut_at_its_reply_marker() {
    let html = "<p>New</p><div id=\"divRplyFwdMsg\">From: x</div><p>old</p>";
    assert_eq!(new_text("", Some(html)), "New");
}

#[test]
fn rendered_html_keeps_its_block_boundaries() {
    let html = "<h3>PyPI Username</h3><p>jodoe</p><ul><li>[X] I agree</li></ul>";
    assert_eq!(
        new_text("", Some(html)),
        "### PyPI Username\njodoe\n\n- [X] I agree"
    );
}

#[test]
fn a_real_plain_part_wins_over_the_html() {
    let html = "<p>Other</p><blockquote>old</blockquote>";
    assert_eq!(new_text("Plain words", Some(html)), "Plain words");
}

#[test]
fn more_attribution_and_separator_shapes_end_the_new_text() {
    for history in [
        "2016-10-24 15:36 GMT+02:00 Foo bar <\ninfo@foo.bar>:\n> old",
        "2013/7/20 sam via Discourse Meta <info@discourse.org>\n\n| old",
        "Max Mustermann <max@example.org> schrieb am Fr., 28.\nApr. 2017 um 11:53 Uhr:\n> alt",
        "30 серп. 2016 р. 20:45 \"Arpit\" <a@example.com> пише:\n> старе",
        "*-------- Original Message --------*\nold",
        "-----Reply Message-----\nold",
        "-----Oprindelig meddelelse-----\nold",
    ] {
        let new = "These are the new words of my reply.";
        let body = format!("{new}\n\n{history}");
        assert_eq!(new_text(&body, None), new, "{history}");
    }
}

#[test]
fn a_reply_that_is_all_quote_has_no_new_text() {
    // A quoted challenge code is never a confirmation: nothing quoted
    // becomes new text, even when nothing else was written.
    assert_eq!(new_text("> Your code is ABCD-EFGH", None), "");
}

#[test]
fn odd_input_does_not_panic() {
    for s in ["", ">", "\r\r\n", "On", "<blockquote>", "é\u{0}—", "-- "] {
        let _ = new_text(s, Some(s));
    }
}

#[test]
fn an_inline_answer_keeps_the_quote_it_answers() {
    let body = "I have one more detail for you today.\nOn Mon, 2024-05-06 at 10:00 +0200, Desk wrote:\n> Which username is it?\n>\n> Please tell us.\n\nIt is jodoe.\n\nJD> an older quote\n\n__\nJo Doe";
    assert_eq!(
        new_text(body, None),
        "I have one more detail for you today.\n> Which username is it?\n>\n> Please tell us.\n\nIt is jodoe."
    );
}

#[test]
fn a_quote_wrapped_by_the_client_is_no_inline_answer() {
    let body = "My answer, which is long enough to count.\nOn Mon, 6 May 2024 at 10:00, Desk <desk@example.org> wrote:\n> We reset the second factor on\nyour account today.";
    assert_eq!(
        new_text(body, None),
        "My answer, which is long enough to count."
    );
}

#[test]
fn prose_ending_in_an_ellipsis_is_not_joined_into_a_wrapped_attribution() {
    let body = "I can test it in 2 weeks. I will let you know then...\nOp 16 aug. 2014 05:13 schreef \"Desk\" <desk@example.org> het\nvolgende geschreven:\n\n> old text";
    assert_eq!(
        new_text(body, None),
        "I can test it in 2 weeks. I will let you know then..."
    );
}

#[test]
fn a_sentence_before_an_attribution_on_its_line_is_kept() {
    let body = "Sounds good. On Tue, Mar 3, 2020 at 10:00 AM Jo <jo@x.org> wrote:\n> old";
    assert_eq!(new_text(body, None), "Sounds good.");
    let body = "Thanks! 2016-03-03 17:21 GMT+01:00 Jo <jo@x.org>:\n> old";
    assert_eq!(new_text(body, None), "Thanks!");
    // A date's abbreviations are no sentence.
    let body = "New\n\nLe 15 janv. 2024 à 14:30, Pierre <p@x.fr> a écrit :\n> old";
    assert_eq!(new_text(body, None), "New");
}

#[test]
fn attributions_in_more_languages_and_undated_over_a_quote_end_the_text() {
    for header in [
        "Op 3 mrt. 2016 om 17:21 heeft Jo <a@b.org> het volgende geschreven:",
        "W dniu 3.03.2016 o 17:21, Jo pisze:",
        "Dne 3. 3. 2016 v 17:21 Jo <a@b.org> napsal(a):",
        "Jo Example wrote:",
    ] {
        let body = format!("New\n\n{header}\n\n> old");
        assert_eq!(new_text(&body, None), "New", "{header}");
    }
    // Undated and with no quote under it, it is a sentence.
    let body = "My colleague wrote:\nthe key is lost";
    assert_eq!(new_text(body, None), body);
}

#[test]
fn a_from_and_date_block_alone_ends_the_text() {
    let body = "New\n\nFrom: Jo <jo@x.org>\nDate: Thu, 3 Mar 2016\n\nold text";
    assert_eq!(new_text(body, None), "New");
    let body = "New\n\nFrom: our records\nDate: unknown\n\nmore";
    assert_eq!(new_text(body, None), body);
}

#[test]
fn a_short_note_above_a_forward_keeps_the_forward() {
    let body = "FYI\n\n---------- Forwarded message ---------\nFrom: PyPI <noreply@pypi.example>\nDate: Mon, Jan 1, 2024\nSubject: Password reset\nTo: <jo@x.org>\n\nSomeone asked to reset your password.\n\nOn Mon, Jan 1, 2024 at 9:00 Jo <jo@x.org> wrote:\n> older";
    let got = new_text(body, None);
    assert!(
        got.starts_with("FYI\n\n---------- Forwarded message"),
        "{got}"
    );
    assert!(got.contains("Subject: Password reset"), "{got}");
    assert!(
        got.ends_with("Someone asked to reset your password."),
        "{got}"
    );
    // A reply's "Original Message" history still goes.
    let body = "FYI\n\n-----Original Message-----\nFrom: Jo\nold";
    assert_eq!(new_text(body, None), "FYI");
}

#[test]
fn a_signature_block_with_a_phone_number_is_dropped() {
    let body = "Please reset it.\n\nJohn Smith | Senior Engineer\nAcme Corp\nM: +44 7700 900123\nhttps://acme.example";
    assert_eq!(new_text(body, None), "Please reset it.");
    // A name and a link may be a proof of ownership: kept.
    let body = "Please reset it.\n\nJohn Smith\nhttps://github.com/jsmith";
    assert_eq!(new_text(body, None), body);
}

#[test]
fn more_phone_footers_are_dropped() {
    for footer in ["Verstuurd vanaf mijn iPhone", "Inviato dal mio iPhone"] {
        assert_eq!(
            new_text(&format!("New\n\n{footer}"), None),
            "New",
            "{footer}"
        );
    }
}

#[test]
fn an_outlook_html_block_after_a_plain_rule_is_history() {
    let html = "<p>My new text</p><hr><p><b>From:</b> Jo<br><b>Sent:</b> Monday</p><p>old text</p>";
    assert_eq!(new_text("", Some(html)), "My new text");
    // A rule with nothing written above it opens a forwarded letter.
    let html = "<hr><p><b>From:</b> Jo<br><b>Sent:</b> Monday</p><p>the letter</p>";
    assert!(new_text("", Some(html)).contains("the letter"));
}

/// Breaks `text` into lines of at most `width` characters at spaces, as a
/// client wraps a long attribution when it quotes.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split(' ') {
        match lines.last_mut() {
            Some(line) if line.chars().count() + 1 + word.chars().count() <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

#[test]
fn attributions_wrapped_over_two_to_four_lines_end_the_text_in_many_languages() {
    let headers = [
        "On Thursday, 3 March 2016 at 17:21, Joanna Example <joanna.example@mail.example> wrote:",
        "Vào Th 5, 3 thg 3, 2016 vào lúc 17:21 Joanna Example <joanna.example@mail.example> đã viết:",
        "Den tor. 3. mar. 2016 kl. 17.21 skrev Joanna Example <joanna.example@mail.example>:",
        "tor. 3. mar. 2016 kl. 17:21 skrev Joanna Example <joanna.example@mail.example>:",
        "Den tors 3 mars 2016 kl 17:21 skrev Joanna Example <joanna.example@mail.example>:",
        "czw., 3 mar 2016 o 17:21 Joanna Example <joanna.example@mail.example> napisał(a):",
        "W dniu 3.03.2016 o 17:21, Joanna Example <joanna.example@mail.example> pisze:",
        "Op do 3 mrt. 2016 om 17:21 schreef Joanna Example <joanna.example@mail.example>:",
        "чт, 3 бер. 2016 о 17:21 Joanna Example <joanna.example@mail.example> пише:",
        "Joanna Example <joanna.example@mail.example> schrieb am Do., 3. März 2016 um 17:21:",
        "El jue., 3 mar. 2016 a las 17:21, Joanna Example (<joanna.example@mail.example>) escribió:",
        "3/3/16 17:21, Joanna Example <joanna.example@mail.example> wrote:",
        "03.03.2016 17:21, Joanna Example <joanna.example@mail.example>:",
    ];
    let new = "The new sentence of this reply.";
    for header in headers {
        for width in [200, 72, 50, 36, 28] {
            let wrapped = wrap(header, width);
            if wrapped.len() > 4 {
                continue;
            }
            let body = format!("{new}\n\n{}\n\n> the older mail", wrapped.join("\n"));
            assert_eq!(new_text(&body, None), new, "{}", wrapped.join(" / "));
        }
    }
}

#[test]
fn a_wrapped_attribution_may_hold_blank_lines_before_its_address() {
    let body = "Yes, that fixed it.\n\nOn Thu, 3 Mar 2016 at 17:21 Joanna Example\n\n<\nmailto:joanna.example@mail.example\n> wrote:\n\n\nThe earlier mail, kept unquoted.";
    assert_eq!(new_text(body, None), "Yes, that fixed it.");
}

#[test]
fn earlier_mail_kept_unquoted_below_an_attribution_is_history() {
    // A short answer over history that the client did not quote.
    let body = "Thanks!\n\nOn Thu, 3 Mar 2016 at 17:21, Desk <desk@x.org> wrote:\n\nPlease send us your username.\n\nThe Desk";
    assert_eq!(new_text(body, None), "Thanks!");
    // With nothing written above it, what follows is the answer.
    let body = "On Thu, 3 Mar 2016 at 17:21, Desk <desk@x.org> wrote:\n\nMy username is jodoe.";
    assert_eq!(new_text(body, None), "My username is jodoe.");
    // Nor is a salutation: the answer is below it.
    let body = "Hi Desk,\n\nOn Thu, 3 Mar 2016 at 17:21, Desk <desk@x.org> wrote:\n\nMy username is jodoe.";
    assert_eq!(new_text(body, None), "Hi Desk,\n\nMy username is jodoe.");
}

#[test]
fn separators_in_more_languages_end_the_text() {
    for separator in [
        "-----Oorspronkelijk bericht-----",
        "-----Opprinnelig melding-----",
        "-------- Original-Nachricht --------",
        "-----Оригінальне повідомлення-----",
        "-----Eredeti üzenet-----",
        "-----Orijinal Mesaj-----",
        "-----Thư gốc-----",
        "------------------ 原始邮件 ------------------",
        "*----- Original Message -----*",
        "===== Reply Message =====",
    ] {
        let body = format!("New words here.\n\n{separator}\nFrom: Desk\nold");
        assert_eq!(new_text(&body, None), "New words here.", "{separator}");
    }
    // A framed phrase in a language not listed, opening a header block.
    let body = "New words here.\n\n----- Izvorno sporočilo -----\nOd: Desk <desk@x.org>\nold";
    assert_eq!(new_text(body, None), "New words here.");
    // A framed heading of the sender's own stays.
    for body in [
        "New words here.\n\n----- My accounts -----\njodoe and jodoe2",
        "New words here.\n\n----- Details -----\nVersion: 1.2, since 2019",
    ] {
        assert_eq!(new_text(body, None), body);
    }
}

#[test]
fn from_and_date_blocks_in_more_languages_end_the_text() {
    for block in [
        "Từ: Desk <desk@x.org>\nNgày: 3 tháng 3, 2016 17:21",
        "Fra: Desk <desk@x.org>\nDato: 3. marts 2016 17:21",
        "Od: Desk <desk@x.org>\nData: 3 marca 2016 17:21",
        "Van: Desk <desk@x.org>\nDatum: donderdag 3 maart 2016 17:21",
        "Від: Desk <desk@x.org>\nДата: 3 березня 2016 р. 17:21",
        "Kimden: Desk <desk@x.org>\nTarih: 3 Mart 2016 17:21",
        "From: The Desk\nSent: Thursday, 3 March 2016 17:21",
    ] {
        let body = format!("New words here.\n\n{block}\n\nold text");
        assert_eq!(new_text(&body, None), "New words here.", "{block}");
    }
}

#[test]
fn mobile_footers_in_more_shapes_are_dropped() {
    for footer in [
        "Envoyé de mon iPhone",
        "Von meinem Samsung Galaxy Smartphone gesendet",
        "Gesendet mit der Mail App",
        "Skickat från min iPad",
        "Wysłane z mojego telefonu",
        "Được gửi từ iPhone của tôi",
        "iPhone'umdan gönderildi",
        "Sent from my Android phone.",
    ] {
        let body = format!("New words here.\n\n{footer}");
        assert_eq!(new_text(&body, None), "New words here.", "{footer}");
    }
    // Sentences about a phone or a mail are no footer.
    for body in [
        "I sent the code to my Android phone but it never came.",
        "Ich habe die Mail gesendet.",
    ] {
        assert_eq!(new_text(body, None), body);
    }
}

#[test]
fn signature_blocks_without_a_delimiter_are_dropped_and_the_sign_off_kept() {
    // Name, title, link and address: a signature even without a phone.
    let body = "Please reset it.\n\nJoanna Example\nHead of Platform, Acme\nhttps://acme.example\njoanna@acme.example";
    assert_eq!(new_text(body, None), "Please reset it.");
    // The closing words are the sender's; the card under them goes.
    let body =
        "Please reset it.\n\nKind regards,\nJoanna Example\nHead of Platform\n+44 20 7946 0958";
    assert_eq!(new_text(body, None), "Please reset it.\n\nKind regards,");
    // A sign-off and a name alone are the sender's words.
    let body = "Please reset it.\n\nCheers\nJo";
    assert_eq!(new_text(body, None), body);
}

#[test]
fn inline_answers_keep_the_quotes_they_answer() {
    // Interleaved answers with no attribution: each answer keeps the
    // question above it; a last quote nobody answered goes.
    let body = "> Which username is it?\n\njodoe\n\n> Do you still read the linked address?\n\nNo, the domain expired.\n\n> Thanks, the Desk";
    assert_eq!(
        new_text(body, None),
        "> Which username is it?\n\njodoe\n\n> Do you still read the linked address?\n\nNo, the domain expired."
    );
    // The sender's own words are the answers alone.
    assert_eq!(reply(body, None).own, "jodoe\n\nNo, the domain expired.");
    // One answer under the whole quote is a bottom-posted reply: the
    // history goes.
    let body = "> Which username is it?\n> Please tell us.\n\nIt is jodoe.";
    assert_eq!(new_text(body, None), "It is jodoe.");
}

#[test]
fn a_forward_under_a_note_is_a_part_of_its_own() {
    let body = "Please see the mail below, I did not ask for it.\n\n---------- Forwarded message ---------\nFrom: Index <noreply@index.example>\nDate: Mon, Jan 1, 2024\nSubject: Reset\n\nSomeone asked to reset your password.";
    let reply = reply(body, None);
    assert_eq!(
        reply.own,
        "Please see the mail below, I did not ask for it."
    );
    let forwarded = reply.forwarded.as_deref().unwrap_or("");
    assert!(
        forwarded.starts_with("---------- Forwarded message"),
        "{forwarded}"
    );
    assert!(forwarded.ends_with("reset your password."), "{forwarded}");
    // What staff and the field rules read is both, in order.
    assert_eq!(
        new_text(body, None),
        format!("{}\n\n{forwarded}", reply.own)
    );
    // A bare forward: nothing of the sender's own.
    let bare = reply_of_bare_forward();
    assert_eq!(bare.own, "");
    assert!(bare.forwarded.is_some());
}

fn reply_of_bare_forward() -> Reply {
    reply(
        "---------- Forwarded message ---------\nFrom: Index <noreply@index.example>\nDate: Mon\nSubject: Codes\n\nNew recovery codes were generated.",
        None,
    )
}

#[test]
fn an_outlook_html_block_in_more_languages_after_a_rule_is_history() {
    for label in ["Kimden", "Từ", "Από", "Nadawca"] {
        let html = format!("<p>My new text</p><hr><p><b>{label}:</b> Desk<br><b>Date:</b> 3.3.2016</p><p>old text</p>");
        assert_eq!(new_text("", Some(&html)), "My new text", "{label}");
    }
}

#[test]
fn attributions_whose_verb_follows_without_a_space_or_with_a_suffix_end_the_text() {
    for header in [
        // Gmail in Chinese puts the address first and the verb right
        // after the time; Apple Mail in Russian genders the verb.
        "Jo Example <jo@example.org> 于2016年3月3日周四 下午5:21写道：",
        "3 марта 2016 г., в 17:21, Jo Example <jo@example.org> написал(а):",
        "2016/03/03 17:21、Jo Example <jo@example.org>のメール:",
    ] {
        let body = format!("New words here.\n\n{header}\n\n> old");
        assert_eq!(new_text(&body, None), "New words here.", "{header}");
        // Earlier mail kept unquoted under it is history too.
        let body = format!("New words here.\n\n{header}\n\nPlease send your username.");
        assert_eq!(new_text(&body, None), "New words here.", "{header}");
    }
}

#[test]
fn a_sentence_before_any_attribution_on_its_line_is_kept() {
    for header in [
        "чт, 3 мар. 2016 г. в 17:21, Jo Example <jo@example.org>:",
        "čt 3. 3. 2016 v 17:21 odesílatel Jo Example <jo@example.org> napsal:",
        "to 3. maalisk. 2016 klo 17.21 Jo Example (jo@example.org) kirjoitti:",
        "---- On Thu, 03 Mar 2016 17:21:00 +0100 Jo Example <jo@example.org> wrote ----",
        "\"Jo Example\" <jo@example.org> wrote:",
        "Jo Example <jo@example.org> 于2016年3月3日周四 下午5:21写道：",
    ] {
        let body = format!("Sounds good, thanks. {header}\n\n> old");
        assert_eq!(new_text(&body, None), "Sounds good, thanks.", "{header}");
    }
}

#[test]
fn original_message_separators_by_their_phrase_end_the_text() {
    for separator in [
        "-------- Originalnachricht --------",
        "------ Původní e-mail ------",
        "-----Оригинальное сообщение-----",
        "------------------ Original ------------------",
    ] {
        let body = format!("New words here.\n\n{separator}\nPlease send your username.");
        assert_eq!(new_text(&body, None), "New words here.", "{separator}");
    }
    // The phrase without its rule, over a header block, goes with it.
    let body = "New words here.\n\nOriginal Message\nFrom: Desk [mailto:desk@example.org]\nSent: Thursday, March 3, 2016 5:21 PM\nTo: Jo\nSubject: RE: account\n\nold";
    assert_eq!(new_text(body, None), "New words here.");
}

#[test]
fn header_blocks_with_field_names_in_more_languages_end_the_text() {
    for block in [
        // Outlook in Korean, Mail.ru, a Chinese webmail in English.
        "보낸 사람: Desk <desk@example.org>\n보낸 날짜: 2016년 3월 3일 목요일 오후 5:21\n받는 사람: jo@example.org\n제목: RE: account",
        "От кого: Desk <desk@example.org>\nКому: jo@example.org\nДата: Четверг, 3 марта 2016, 17:21 +03:00\nТема: account",
        "Sender: Desk <desk@example.org>\nDate: 2016-03-03 17:21\nTo: jo\nSubject: account",
        // Only the From field known: the block's shape does the rest.
        "Od: Desk <desk@example.org>\nPoslano: četrtek, 3. marec 2016 17:21\nZa: jo@example.org\nZadeva: RE: račun",
    ] {
        let body = format!("New words here.\n\n{block}\n\nPlease send your username.");
        assert_eq!(new_text(&body, None), "New words here.", "{block}");
    }
    // A requester's own details are no header block.
    let body =
        "New words here.\n\nEmail: jo@example.org\nCreated: 2019-03-03 10:00\nUsername: jodoe";
    assert_eq!(new_text(body, None), body);
}

#[test]
fn from_and_sent_pairs_with_localized_names_end_the_text() {
    for block in [
        "Von: Desk <desk@example.org>\nGesendet: Donnerstag, 3. März 2016 17:21",
        "De : Desk <desk@example.org>\nEnvoyé : jeudi 3 mars 2016 17:21",
        "Od: Desk <desk@example.org>\nWysłano: czwartek, 3 marca 2016 17:21",
        "Fra: Desk <desk@example.org>\nSendt: 3. marts 2016 17:21",
        "Van: Desk <desk@example.org>\nVerzonden: donderdag 3 maart 2016 17:21",
        "Från: Desk <desk@example.org>\nSkickat: den 3 mars 2016 17:21",
        "От: Desk <desk@example.org>\nОтправлено: 3 марта 2016 г. 17:21",
        "Gesendet: Donnerstag, 03. März 2016 um 17:21 Uhr\nVon: \"Desk\" <desk@example.org>\nAn: jo@example.org\nBetreff: Re: Konto",
    ] {
        let body = format!("New words here.\n\n{block}\n\nPlease send your username.");
        assert_eq!(new_text(&body, None), "New words here.", "{block}");
    }
}

#[test]
fn mail_app_adverts_and_long_phone_footers_are_dropped() {
    for footer in [
        "Obtenir Outlook pour iOS",
        "Holen Sie sich Outlook für iOS",
        "Obtener Outlook para Android",
        "Outlook voor iOS downloaden",
        "Get BlueMail for Android",
        "Diese Nachricht wurde von meinem Android-Mobiltelefon mit GMX Mail gesendet.",
    ] {
        let body = format!("New words here.\n\n{footer}");
        assert_eq!(new_text(&body, None), "New words here.", "{footer}");
        let body = format!("New words here.\n\n{footer}\n\nOn Thu, Mar 3, 2016 at 5:21 PM Desk <desk@example.org> wrote:\n> old");
        assert_eq!(new_text(&body, None), "New words here.", "{footer}");
    }
    // A footer's words opening a sentence that goes on are the sender's.
    for body in [
        "Sent from my phone, sorry for typos: my username is jodoe.",
        "I use Outlook for iOS",
        "Hi,\n\nI sent it from my Android phone but nothing came.",
    ] {
        assert_eq!(new_text(body, None), body);
    }
}

#[test]
fn cards_under_thanks_rules_and_notices_are_dropped() {
    let new = "Please reset it.";
    for (body, want) in [
        // A thanks, a name, a title, a company and a bare domain.
        (
            "Please reset it.\n\nThanks,\nJoanna Example\nSenior Developer\nAcme Inc.\nacme.example",
            "Please reset it.\n\nThanks,",
        ),
        // A labelled phone number in French.
        (
            "Please reset it.\n\nCordialement,\nJeanne Exemple\nResponsable technique\nTél : +33 1 23 45 67 89",
            "Please reset it.\n\nCordialement,",
        ),
        // A card drawn under a rule below the sign-off.
        (
            "Please reset it.\n\nThanks!\nJo\n\n-----\nJoanna Example\nAcme Ltd\n+44 20 7946 0958",
            "Please reset it.\n\nThanks!\nJo",
        ),
        (
            "Please reset it.\n\nThanks,\nJo Example\n—————\nJoanna Example\nProduct Manager\njoanna@acme.example",
            "Please reset it.\n\nThanks,\nJo Example",
        ),
        // Two numbers on one line.
        (
            "Please reset it.\n\nJoanna Example\nCTO, Acme\nT +44 20 7946 0958  M +44 7700 900123",
            new,
        ),
        // A confidentiality notice.
        (
            "Please reset it.\n\nRegards,\nJo\n\nThis e-mail is confidential and may be privileged. If you are not the intended recipient, please delete it.",
            "Please reset it.\n\nRegards,\nJo",
        ),
    ] {
        assert_eq!(new_text(body, None), want, "{body}");
    }
    // A rule between parts of a letter stays, and so does what is under it.
    for body in [
        "My details are below.\n\n-----\nUsername: jodoe\nReason: lost phone",
        "Part one of my story.\n\n---\n\nThen I lost the codes as well, so I cannot log in.",
    ] {
        assert_eq!(new_text(body, None), body);
    }
}

#[test]
fn prose_about_writing_is_no_attribution() {
    for body in [
        "I am writing again about my account.\nOn 3 March 2016 I wrote to you about this:\nmy phone was stolen and the codes were on it.",
        "As support wrote on 3 March 2016:\nthe account must be verified first. I did that.",
        "Thanks for the reply.\nYesterday we wrote to you from jo@example.org as well.\nThe username is jodoe.",
    ] {
        assert_eq!(new_text(body, None), body);
    }
    // A real attribution over a quote still ends the text.
    let body = "New words here.\n\nOn 3 March 2016, Desk wrote:\n> old";
    assert_eq!(new_text(body, None), "New words here.");
    // So does an old client's "you wrote", dated to the minute.
    let body = "New words here.\n\nAt 3/3/2016 05:21 PM, you wrote:\n> old";
    assert_eq!(new_text(body, None), "New words here.");
}

#[test]
fn webmail_attributions_and_helpdesk_markers_end_the_text() {
    for history in [
        // Open-Xchange (GMX, web.de) in German, Horde, AOL, Indonesian.
        "Jo Example <jo@example.org> hat am 3. März 2016 um 17:21 geschrieben:\n> alt",
        "Quoting Jo Example <jo@example.org>:\n\n> old",
        "Zitat von Jo Example <jo@example.org>:\n\n> alt",
        "In a message dated 3/3/2016 5:21:00 PM, jo@example.org writes:\n> old",
        "Pada tanggal Kam, 3 Mar 2016 pukul 17.21 Jo Example <jo@example.org> menulis:\n> old",
        "##- Please type your reply above this line -##\n\nYour request RD-7K3M9Q was updated.",
    ] {
        let body = format!("New words here.\n\n{history}");
        assert_eq!(new_text(&body, None), "New words here.", "{history}");
    }
    // Quoting in a sentence, with no quote under it, is prose.
    let body = "New words here.\nQuoting my earlier mail:\nthe phone was stolen.";
    assert_eq!(new_text(body, None), body);
}

#[test]
fn html_replies_of_more_clients_keep_only_the_new_text() {
    for (client, html) in [
        ("Outlook desktop", "<div class=WordSection1><p class=MsoNormal>Yes, the username is jodoe.</p><div><div style='border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0cm 0cm 0cm'><p class=MsoNormal><b>From:</b> Desk &lt;desk@example.org&gt;<br><b>Sent:</b> Thursday, March 3, 2016 5:21 PM<br><b>To:</b> Jo<br><b>Subject:</b> RE: account</p></div></div><p class=MsoNormal>Please send your username.</p></div>"),
        ("Apple Mail", "<div>Yes, the username is jodoe.</div><div><br><blockquote type=\"cite\"><div>On 3 Mar 2016, at 17:21, Desk &lt;desk@example.org&gt; wrote:</div><div>Please send your username.</div></blockquote></div>"),
        ("Thunderbird", "<p>Yes, the username is jodoe.</p><div class=\"moz-cite-prefix\">On 03/03/2016 17:21, Desk wrote:<br></div><blockquote type=\"cite\">Please send your username.</blockquote>"),
        ("QQ", "<div>Yes, the username is jodoe.</div><div style=\"font-size: 12px;\">------------------&nbsp;原始邮件&nbsp;------------------</div><div><div><b>发件人:</b>&nbsp;\"Desk\"&lt;desk@example.org&gt;;</div><div><b>发送时间:</b>&nbsp;2016年3月3日(星期四) 下午5:21</div><div><b>收件人:</b>&nbsp;\"jo\"&lt;jo@example.org&gt;;</div></div>Please send your username."),
        ("GMX", "<div>Yes, the username is jodoe.</div><div>&nbsp;</div><div name=\"quote\"><div><b>Gesendet:</b>&nbsp;Donnerstag, 03. März 2016 um 17:21 Uhr<br/><b>Von:</b>&nbsp;\"Desk\" &lt;desk@example.org&gt;<br/><b>An:</b>&nbsp;jo@example.org<br/><b>Betreff:</b>&nbsp;Konto</div><div name=\"quoted-content\">Please send your username.</div></div>"),
        ("Yahoo", "<div>Yes, the username is jodoe.</div><div class=\"yahoo_quoted\"><div>On Thursday, March 3, 2016, 5:21:00 PM GMT+1, Desk &lt;desk@example.org&gt; wrote:</div><div>Please send your username.</div></div>"),
    ] {
        assert_eq!(new_text("", Some(html)), "Yes, the username is jodoe.", "{client}");
    }
}

#[test]
fn plain_replies_of_more_clients_keep_only_the_new_text() {
    for (client, body) in [
        ("K-9", "jodoe\n\nOn March 3, 2016 5:21:00 PM GMT+01:00, Desk <desk@example.org> wrote:\n>Please send your username.\n\n-- \nSent from my Android device with K-9 Mail. Please excuse my brevity."),
        ("Naver", "jodoe\n\n-----Original Message-----\nFrom: \"Desk\"<desk@example.org>\nTo: <jo@example.org>;\nCc:\nSent: 2016-03-03 (목) 17:21:00\nSubject: account\n\nPlease send your username."),
        ("163", "jodoe\n\n在 2016-03-03 17:21:00，\"Desk\" <desk@example.org> 写道：\n>Please send your username."),
        ("Yandex", "jodoe\n\n03.03.2016, 17:21, \"Desk\" <desk@example.org>:\n> Please send your username."),
        ("Mail.ru", "jodoe\n\n\nЧетверг, 3 марта 2016, 17:21 +03:00 от Desk <desk@example.org>:\n\n>Please send your username."),
        ("Proton", "jodoe\n\nSent with Proton Mail secure email.\n\n------- Original Message -------\nOn Thursday, March 3rd, 2016 at 17:21, Desk <desk@example.org> wrote:\n\n> Please send your username."),
        ("Outlook, Date first", "jodoe\n\nDate: Thu, 3 Mar 2016 17:21:00 +0000\nFrom: Desk <desk@example.org>\nTo: jo@example.org\nSubject: account\n\nPlease send your username."),
        ("Outlook for iOS", "jodoe\n\nGet Outlook for iOS\n________________________________\nFrom: Desk <desk@example.org>\nSent: Thursday, March 3, 2016 5:21:00 PM\nTo: jo@example.org\nSubject: RE: account\n\nPlease send your username."),
        ("a list footer", "jodoe\n\n-----------------------------------------\nThis list is run by Example Lists\nhttps://lists.example.org/listinfo"),
    ] {
        assert_eq!(new_text(body, None), "jodoe", "{client}");
    }
    // Closing words over a card and nothing else: the card is the message
    // (a name and a profile link, as proof), and stays.
    let body = "Thanks,\nJo Example\nSenior Developer\nhttps://github.com/jodoe";
    assert_eq!(new_text(body, None), body);
}

#[test]
fn a_footer_line_over_a_letter_under_a_greeting_cuts_nothing() {
    // Some clients put their footer where the cursor was, under the
    // greeting; what the sender wrote under it is still theirs.
    let body = "Hi,\n\nSent from my iPhone\n\nI lost the phone with the authenticator app, my username is jodoe.";
    assert_eq!(new_text(body, None), body);
    // Under a letter, what follows is the earlier mail a phone shows
    // unquoted.
    let body = "I lost the phone with the authenticator app, my username is jodoe.\n\nSent from my iPhone\n\nPlease tell us which account it is and why you cannot sign in.";
    assert_eq!(
        new_text(body, None),
        "I lost the phone with the authenticator app, my username is jodoe."
    );
    // A footer over history or a notice still ends the text.
    let body = "New words here.\n\nSent from my iPhone\n\nThis e-mail is confidential. If you are not the intended recipient, please delete it.";
    assert_eq!(new_text(body, None), "New words here.");
    let body = "New words here.\n\nSent from my iPhone\n\nOn Thu, Mar 3, 2016 at 5:21 PM Desk <desk@example.org> wrote:\n> Please send us your username and the reason in a few words.";
    assert_eq!(new_text(body, None), "New words here.");
}

#[test]
fn a_body_of_thousands_of_phone_footers_is_read_in_one_pass() {
    // Each footer under no more than a greeting looks below itself for the
    // letter; a hostile body of nothing but footers must not make that a
    // recursion as deep as the body is long (a stack overflow aborts).
    let body = "Hi,\n".to_string() + &"Sent from my iPhone\n".repeat(200_000);
    let text = new_text(&body, None);
    assert!(text.starts_with("Hi,"), "{}", &text[..text.len().min(80)]);
    assert!(text.len() < 100, "the footers are not the sender's words");
}

#[test]
fn a_body_of_thousands_of_ruled_cards_is_read_without_recursing_per_card() {
    let body = "Hi, my username is jodoe.\n".to_string() + &"-----\nJo Example\n".repeat(30_000);
    let text = new_text(&body, None);
    assert!(
        text.starts_with("Hi, my username is jodoe."),
        "{}",
        &text[..text.len().min(80)]
    );
}
