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
    assert_eq!(new_text("Hi\n\nBest regards,\nJo", None), "Hi");
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
fn quoted_lines_are_dropped_and_inline_answers_kept() {
    let body = "On Dec 15, 2024, at 2:00 PM, Desk <d@x.org> wrote:\n> Username?\n\njodoe\n\n> Reason?\n\nlost phone";
    assert_eq!(new_text(body, None), "jodoe\n\nlost phone");
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
    let body = "FYI\n\n---------- Forwarded message ---------\nFrom: PyPI <noreply@pypi.org>\nDate: Mon, Jan 1, 2024\nSubject: Password reset\nTo: <jo@x.org>\n\nSomeone asked to reset your password.\n\nOn Mon, Jan 1, 2024 at 9:00 Jo <jo@x.org> wrote:\n> older";
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
