//! Email through the outbox: an invite reaches a real SMTP conversation once, with
//! its link; a message queued in a rolled-back change is never sent.

// Tests look at the database as it is, across organisations.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use std::time::Duration;

use common::{Backend, TestApp, smtp::SmtpSink};
use serde_json::Value;

#[each_backend]
#[tokio::test]
async fn an_invite_is_delivered_by_smtp_exactly_once_even_with_two_instances(backend: Backend) {
    let sink = SmtpSink::start().await;
    let storage = common::Storage::new(backend).await;
    let with_smtp = |c: &mut rollcall::config::Config| {
        c.smtp_url = Some(sink.url());
        c.mail_from = "Rollcall <no-reply@rollcall.test>".into();
    };
    let app = TestApp::spawn_with(storage.clone(), with_smtp).await;
    // A second instance shares the database, so both workers race for each message.
    let _other = TestApp::spawn_with(storage.clone(), with_smtp).await;
    let org = app.organization("Mail Clinic").await;
    app.user(org, "admin@mail.test", &["Admin"]).await;
    let admin = app.login("admin@mail.test", common::PASSWORD).await;

    let data = app
        .ok(
            &admin,
            "mutation { createUser(input: { email: \"nia@mail.test\", firstName: \"Nia\", lastName: \"New\" }) { inviteLink } }",
            Value::Null,
        )
        .await;
    let link = data["createUser"]["inviteLink"]
        .as_str()
        .unwrap()
        .to_owned();
    // A refused creation queues nothing.
    app.graphql(
        Some(&admin),
        "mutation { createUser(input: { email: \"nia@mail.test\", firstName: \"Again\", lastName: \"X\" }) { inviteLink } }",
        Value::Null,
    )
    .await;

    for _ in 0..100 {
        if !sink.received().is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Give a duplicate delivery the time to show up, were there one.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let received = sink.received();
    assert_eq!(received.len(), 1, "{backend:?}: {received:?}");
    let message = &received[0];
    assert_eq!(message.to, ["nia@mail.test"]);
    assert!(message.from.contains("no-reply@rollcall.test"));
    assert!(
        message
            .data
            .contains("Subject: You are invited to Mail Clinic on Rollcall")
    );
    assert!(
        message.data.contains(&link),
        "{backend:?}: the link is not in {}",
        message.data
    );

    use sea_orm::EntityTrait;
    let stored = entity::outbox_message::Entity::find()
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].status, "SENT");
    assert_eq!(stored[0].attempts, 1);
    // Sent, the message keeps no link that anyone reading the database
    // could use.
    let token = link.rsplit('/').next().unwrap();
    assert!(!stored[0].body.contains(token), "{}", stored[0].body);
    assert!(
        stored[0].body.contains("/invite/[removed]"),
        "{}",
        stored[0].body
    );
}
