//! A user who forgot their password asks for a link at the sign-in page, and
//! chooses a new one through it: the answer never tells who has an account, the
//! link reaches only the account's own address, works once and for an hour, and
//! redeeming it ends every session the old password opened, on every instance.
//! Whichever way a password changes, its owner is told by email.

// Tests look at the database as it is, across organisations.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use std::time::Duration;

use chrono::Utc;
use common::{Backend, PASSWORD, TestApp, error_code, error_fields, smtp::SmtpSink};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder};
use serde_json::{Value, json};

const REQUEST: &str = "mutation($e: String!) { requestPasswordReset(email: $e) }";
const RESET: &str = "mutation($t: String!, $p: String!) {
    resetPassword(token: $t, password: $p) { token mustChangePassword user { email } } }";
const ME: &str = "{ me { email } }";

async fn request_reset(app: &TestApp, email: &str) -> (u16, Value) {
    app.graphql(None, REQUEST, json!({ "e": email })).await
}

/// How many password resets have been asked for and handled in the background.
async fn handled_requests(app: &TestApp) -> usize {
    entity::audit_event::Entity::find()
        .filter(entity::audit_event::Column::Action.eq("auth.password_reset_requested"))
        .all(&app.db)
        .await
        .unwrap()
        .len()
}

/// Wait until `count` requests have been handled.
async fn until_handled(app: &TestApp, count: usize) {
    for _ in 0..100 {
        if handled_requests(app).await >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("fewer than {count} reset requests handled within 5 s");
}

/// A server that delivers its email to a sink, as a real deployment would.
async fn with_mail(backend: common::Backend) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let app = TestApp::spawn_with(common::Storage::new(backend).await, |c| {
        c.smtp_url = Some(sink.url());
    })
    .await;
    (app, sink)
}

/// The reset emails delivered so far, oldest first: (recipient, link). The
/// outbox keeps no readable link once it has sent one, so they are read where
/// the user reads them.
async fn reset_emails(app: &TestApp, mail: &SmtpSink) -> Vec<(String, String)> {
    for _ in 0..200 {
        let waiting = entity::outbox_message::Entity::find()
            .filter(entity::outbox_message::Column::Kind.eq("user.password_reset"))
            .filter(entity::outbox_message::Column::Status.is_in(["PENDING", "SENDING"]))
            .all(&app.db)
            .await
            .unwrap();
        if waiting.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    mail.received()
        .into_iter()
        .filter_map(|m| {
            // The body travels quoted-printable (its lines are long): undo
            // the soft line breaks that split the link.
            let text = m.data.replace("=\r\n", "").replace("=3D", "=");
            let link = text
                .lines()
                .find(|line| line.starts_with(&format!("{}/reset-password/", app.address)))?
                .to_owned();
            Some((m.to[0].clone(), link))
        })
        .collect()
}

/// The status a GET of a link's page answers with.
async fn page_status(app: &TestApp, link: &str) -> u16 {
    app.client.get(link).send().await.unwrap().status().as_u16()
}

fn token_of(link: &str) -> String {
    link.rsplit('/').next().unwrap().to_owned()
}

#[each_backend]
#[tokio::test]
async fn a_forgotten_password_is_replaced_through_a_link_that_ends_every_session(backend: Backend) {
    let (app, mail) = with_mail(backend).await;
    let org = app.organization("Harbour Clinic").await;
    app.user(org, "nurse@harbour.test", &["Clinical Manager"])
        .await;
    let gone = app.user(org, "gone@harbour.test", &["Billing"]).await;
    let phone = app.login("nurse@harbour.test", PASSWORD).await;
    let laptop = app.login("nurse@harbour.test", PASSWORD).await;
    entity::user::Entity::update(entity::user::ActiveModel {
        id: Set(gone),
        status: Set("INACTIVE".into()),
        ..Default::default()
    })
    .exec(&app.db)
    .await
    .unwrap();

    // The same answer for an account, a stranger and a deactivated account.
    for email in [
        "nobody@harbour.test",
        "gone@harbour.test",
        "  Nurse@Harbour.TEST ",
    ] {
        let (status, body) = request_reset(&app, email).await;
        assert_eq!(
            (status, &body["data"]["requestPasswordReset"]),
            (200, &json!(true)),
            "{backend:?}: {email}: {body}"
        );
    }
    until_handled(&app, 3).await;
    let emails = reset_emails(&app, &mail).await;
    assert_eq!(emails.len(), 1, "{backend:?}: {emails:?}");
    let (to, link) = &emails[0];
    assert_eq!(to, "nurse@harbour.test");
    assert!(
        link.starts_with(&format!("{}/reset-password/", app.address)),
        "{link}"
    );

    // Locked out by failed logins before the reset.
    for _ in 0..10 {
        app.graphql(
            None,
            "mutation { login(email: \"nurse@harbour.test\", password: \"wrong 12345\") { token } }",
            Value::Null,
        )
        .await;
    }
    let (_, body) = app
        .graphql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({ "e": "nurse@harbour.test", "p": PASSWORD }),
        )
        .await;
    assert_eq!(error_code(&body), "RATE_LIMITED", "{backend:?}: {body}");

    // The page names the account and what the link does, and leaks nothing.
    let page = app.client.get(link).send().await.unwrap();
    assert_eq!(page.status().as_u16(), 200);
    assert_eq!(page.headers()["cache-control"], "no-store");
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    let text = page.text().await.unwrap();
    assert!(text.contains("Choose a new password"), "{text}");
    assert!(text.contains("nurse@harbour.test"), "{text}");
    assert!(
        text.contains("At least 8 characters, with a digit."),
        "{text}"
    );

    // It states the organisation's own rules.
    entity::organization::Entity::update(entity::organization::ActiveModel {
        id: Set(org),
        password_min_length: Set(12),
        password_require_digit: Set(false),
        ..Default::default()
    })
    .exec(&app.db)
    .await
    .unwrap();
    let text = app
        .client
        .get(link)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(text.contains("At least 12 characters."), "{text}");
    assert!(text.contains(r#"minlength="12""#), "{text}");

    // A weak password is refused and changes nothing.
    let token = token_of(link);
    let (_, body) = app
        .graphql(None, RESET, json!({ "t": token, "p": "short" }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    assert_eq!(error_fields(&body)[0].0, "password");
    app.ok(&phone, ME, Value::Null).await;

    // A good one ends both sessions, lifts the lockout and signs in.
    let (_, body) = app
        .graphql(None, RESET, json!({ "t": token, "p": "Tide turns 2026" }))
        .await;
    let reset = &body["data"]["resetPassword"];
    assert_eq!(reset["user"]["email"], "nurse@harbour.test", "{body}");
    assert_eq!(reset["mustChangePassword"], false);
    let fresh = reset["token"].as_str().unwrap().to_owned();
    // Another instance, delivering to the same mail server.
    let other = match backend {
        common::Backend::Production => {
            Some(TestApp::spawn_with(app.storage.clone(), |c| c.smtp_url = Some(mail.url())).await)
        }
        common::Backend::Embedded => None,
    };
    for instance in std::iter::once(&app).chain(other.as_ref()) {
        for old in [&phone, &laptop] {
            let (_, body) = instance.graphql(Some(old), ME, Value::Null).await;
            assert_eq!(error_code(&body), "UNAUTHENTICATED", "{backend:?}: {body}");
        }
    }
    app.ok(&fresh, ME, Value::Null).await;
    let (_, body) = app
        .graphql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({ "e": "nurse@harbour.test", "p": PASSWORD }),
        )
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    app.login("nurse@harbour.test", "Tide turns 2026").await;

    // Used once: the page and the mutation refuse it now.
    assert_eq!(page_status(&app, link).await, 404);
    let (_, body) = app
        .graphql(None, RESET, json!({ "t": token, "p": "Another tide 2026" }))
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT");
    assert_eq!(error_fields(&body)[0].0, "token");

    // A newer link closes the older one; the form on the page uses it.
    request_reset(&app, "nurse@harbour.test").await;
    until_handled(&app, 4).await;
    request_reset(&app, "nurse@harbour.test").await;
    until_handled(&app, 5).await;
    let emails = reset_emails(&app, &mail).await;
    assert_eq!(emails.len(), 3, "{backend:?}: {emails:?}");
    let (older, newer) = (&emails[1].1, &emails[2].1);
    assert_eq!(page_status(&app, older).await, 404);
    let done = app
        .client
        .post(newer)
        .form(&[("password", "Low tide 2027"), ("confirm", "Low tide 2027")])
        .send()
        .await
        .unwrap();
    assert_eq!(done.status().as_u16(), 200);
    assert!(
        done.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .starts_with("rollcall_session=")
    );
    assert!(
        done.text()
            .await
            .unwrap()
            .contains("signed out everywhere else")
    );
    let (_, body) = app.graphql(Some(&fresh), ME, Value::Null).await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{backend:?}: {body}");
    app.login("nurse@harbour.test", "Low tide 2027").await;

    // Both resets are in the audit trail as the user's own doing.
    let resets = entity::audit_event::Entity::find()
        .filter(entity::audit_event::Column::Action.eq("user.reset_password_with_link"))
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(resets.len(), 2, "{backend:?}");
    let told = told_of_changes(&app, "nurse@harbour.test").await;
    assert_eq!(told.len(), 2, "{backend:?}: {told:?}");
    assert!(
        told.iter().all(|b| b.contains("password-reset link")),
        "{told:?}"
    );
}

/// The bodies of the password-changed emails queued for `email`, oldest first.
async fn told_of_changes(app: &TestApp, email: &str) -> Vec<String> {
    entity::outbox_message::Entity::find()
        .filter(entity::outbox_message::Column::Kind.eq("user.password_changed"))
        .filter(entity::outbox_message::Column::Recipient.eq(email))
        .order_by_asc(entity::outbox_message::Column::CreatedAt)
        .all(&app.db)
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.body)
        .collect()
}

#[each_backend]
#[tokio::test]
async fn a_user_hears_of_every_change_of_their_password(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let org = app.organization("Pier Clinic").await;
    let nurse = app.user(org, "rn@pier.test", &["Clinical Manager"]).await;
    app.user(org, "admin@pier.test", &["Admin"]).await;
    let admin = app.login("admin@pier.test", PASSWORD).await;
    let own = app.login("rn@pier.test", PASSWORD).await;

    app.ok(
        &own,
        "mutation($c: String!) { changePassword(currentPassword: $c, newPassword: \"Pier pressure 77\") }",
        json!({ "c": PASSWORD }),
    )
    .await;
    app.ok(
        &admin,
        "mutation($u: ID!) { resetUserPassword(id: $u) { generatedPassword } }",
        json!({ "u": nurse.to_string() }),
    )
    .await;

    let told = told_of_changes(&app, "rn@pier.test").await;
    assert_eq!(told.len(), 2, "{backend:?}: {told:?}");
    assert!(
        told[0].contains("changed from your signed-in account"),
        "{}",
        told[0]
    );
    assert!(told[1].contains("reset by an administrator"), "{}", told[1]);
    assert!(told.iter().all(|b| b.contains("tell your administrator")));
    // The admin's own password did not change: nothing for them.
    assert!(told_of_changes(&app, "admin@pier.test").await.is_empty());
}

#[each_backend]
#[tokio::test]
async fn a_reset_link_lasts_an_hour_and_requests_are_rate_limited(backend: Backend) {
    let (app, mail) = with_mail(backend).await;
    let org = app.organization("Quay Practice").await;
    app.user(org, "gp@quay.test", &["Clinical Manager"]).await;
    request_reset(&app, "gp@quay.test").await;
    until_handled(&app, 1).await;
    let link = reset_emails(&app, &mail).await.pop().unwrap().1;

    // An hour later the link is dead.
    let stored = entity::invite::Entity::find()
        .filter(entity::invite::Column::Purpose.eq("PASSWORD_RESET"))
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let lasts = stored.expires_at - stored.created_at;
    assert_eq!(lasts, chrono::Duration::hours(1), "{backend:?}");
    entity::invite::Entity::update(entity::invite::ActiveModel {
        id: Set(stored.id),
        expires_at: Set(Utc::now() - chrono::Duration::seconds(1)),
        ..Default::default()
    })
    .exec(&app.db)
    .await
    .unwrap();
    assert_eq!(page_status(&app, &link).await, 404);
    let (_, body) = app
        .graphql(
            None,
            RESET,
            json!({ "t": token_of(&link), "p": "Late again 2026" }),
        )
        .await;
    assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
    app.login("gp@quay.test", PASSWORD).await;

    // Five requests for one email within the window, then RATE_LIMITED,
    // whether or not the address has an account. Four at once leave one
    // link open, the last made.
    for email in ["gp@quay.test", "nobody@quay.test"] {
        let asked = if email == "gp@quay.test" { 1 } else { 0 };
        let answers =
            futures_util::future::join_all((asked..5).map(|_| request_reset(&app, email))).await;
        for (_, body) in answers {
            assert_eq!(body["data"]["requestPasswordReset"], true, "{body}");
        }
        let (_, body) = request_reset(&app, email).await;
        assert_eq!(error_code(&body), "RATE_LIMITED", "{backend:?}: {body}");
    }
    until_handled(&app, 10).await;
    let open: Vec<_> = entity::invite::Entity::find()
        .filter(entity::invite::Column::UsedAt.is_null())
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(open.len(), 1, "{backend:?}: {open:?}");
    assert_eq!(reset_emails(&app, &mail).await.len(), 5, "{backend:?}");
    // Not an address at all: answered like any other.
    let (_, body) = request_reset(&app, "not an address").await;
    assert_eq!(body["data"]["requestPasswordReset"], true, "{body}");
}

#[each_backend]
#[tokio::test]
async fn a_reset_link_does_not_stand_in_for_the_second_factor(backend: Backend) {
    let (app, mail) = with_mail(backend).await;
    let org = app.organization("Second Factor Clinic").await;
    app.user(org, "nurse@factor.test", &["Provider"]).await;
    let token = app.login("nurse@factor.test", PASSWORD).await;
    // The nurse's phone, enrolled from the URI the server gave.
    let started = app
        .ok(
            &token,
            "mutation { startTotpEnrollment { otpauthUri } }",
            json!({}),
        )
        .await;
    let phone = totp_rs::TOTP::from_url(
        started["startTotpEnrollment"]["otpauthUri"]
            .as_str()
            .unwrap(),
    )
    .unwrap();
    app.ok(
        &token,
        "mutation($c: String!) { confirmTotpEnrollment(code: $c) }",
        json!({ "c": phone.generate_current().unwrap() }),
    )
    .await;

    let (_, body) = app
        .graphql(None, REQUEST, json!({ "e": "nurse@factor.test" }))
        .await;
    assert_eq!(body["data"]["requestPasswordReset"], true, "{body}");
    let link = loop {
        if let Some((_, link)) = reset_emails(&app, &mail).await.pop() {
            break link;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (_, body) = app
        .graphql(
            None,
            "mutation($t: String!, $p: String!) { resetPassword(token: $t, password: $p) { token mfaRequired mfaMethods } }",
            json!({ "t": token_of(&link), "p": "A brand new horse 7" }),
        )
        .await;
    let reset = &body["data"]["resetPassword"];
    assert_eq!(reset["mfaRequired"], true, "{backend:?}: {body}");
    assert_eq!(reset["mfaMethods"], json!(["TOTP", "RECOVERY_CODE"]));
    let pending = reset["token"].as_str().unwrap();
    let (_, body) = app
        .graphql(Some(pending), "{ me { email } }", json!({}))
        .await;
    assert_eq!(error_code(&body), "MFA_REQUIRED", "{body}");
}
