//! The outbox worker's rules against a real database: temporary failures are
//! retried after a backoff, permanent ones are not, a message whose sender died
//! mid-send is never sent twice, and attempts are bounded.

// Tests look at the database as it is, across organisations.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
};

use chrono::Utc;
use common::{Backend, Storage};
use rollcall::{
    domain::Email,
    services::outbox::{self, Deliverer, DeliveryError, NewEmail, Transport},
};
use sea_orm::{ActiveModelTrait, ActiveValue::Set, DatabaseConnection, EntityTrait};
use tokio::sync::Notify;
use uuid::Uuid;

/// A transport that answers from a script and records what it was asked to send.
#[derive(Default)]
struct Scripted {
    answers: Mutex<VecDeque<Result<(), DeliveryError>>>,
    sent: Mutex<Vec<Uuid>>,
}

#[async_trait::async_trait]
impl Transport for Scripted {
    async fn send(&self, message: &entity::outbox_message::Model) -> Result<(), DeliveryError> {
        self.sent.lock().unwrap().push(message.id);
        self.answers.lock().unwrap().pop_front().unwrap_or(Ok(()))
    }
}

async fn queue(db: &DatabaseConnection, to: &str) -> Uuid {
    outbox::enqueue_email(
        db,
        NewEmail {
            organization_id: None,
            kind: "test.message",
            to: &Email::parse(to, "to").unwrap(),
            subject: "Hello".into(),
            body: "Body".into(),
        },
    )
    .await
    .unwrap()
}

async fn message(db: &DatabaseConnection, id: Uuid) -> entity::outbox_message::Model {
    entity::outbox_message::Entity::find_by_id(id)
        .one(db)
        .await
        .unwrap()
        .unwrap()
}

/// Make a message due now, as if its backoff had passed.
async fn make_due(db: &DatabaseConnection, id: Uuid) {
    let mut active: entity::outbox_message::ActiveModel = message(db, id).await.into();
    active.next_attempt_at = Set(Utc::now());
    active.update(db).await.unwrap();
}

#[each_backend]
#[tokio::test]
async fn failures_are_retried_given_up_or_never_repeated_as_they_deserve(backend: Backend) {
    // No server runs here: its worker would race this test's for the messages.
    let storage = Storage::new(backend).await;
    let db = rollcall::app::connect_database(&storage.config())
        .await
        .unwrap();
    rollcall::app::migrate(&db).await.unwrap();
    let transport = Arc::new(Scripted::default());
    let worker = Deliverer::new(
        db.clone(),
        transport.clone(),
        Arc::new(Notify::new()),
        std::time::Duration::from_secs(15),
    );

    // A temporary failure: back to PENDING with a backoff, then delivered.
    transport
        .answers
        .lock()
        .unwrap()
        .push_back(Err(DeliveryError::Transient("451 try again later".into())));
    let retried = queue(&db, "retry@outbox.test").await;
    assert_eq!(worker.deliver_due().await.unwrap(), 1);
    let after_failure = message(&db, retried).await;
    assert_eq!(after_failure.status, "PENDING", "{backend:?}");
    assert_eq!(after_failure.attempts, 1);
    assert_eq!(
        after_failure.last_error.as_deref(),
        Some("451 try again later")
    );
    assert!(after_failure.next_attempt_at > Utc::now() + chrono::Duration::seconds(10));
    assert_eq!(
        worker.deliver_due().await.unwrap(),
        0,
        "not due before its backoff"
    );
    make_due(&db, retried).await;
    assert_eq!(worker.deliver_due().await.unwrap(), 1);
    let delivered = message(&db, retried).await;
    assert_eq!(delivered.status, "SENT");
    assert_eq!(delivered.attempts, 2);
    assert!(delivered.sent_at.is_some());

    // A permanent refusal is not retried.
    transport
        .answers
        .lock()
        .unwrap()
        .push_back(Err(DeliveryError::Permanent("550 no such mailbox".into())));
    let refused = queue(&db, "nobody@outbox.test").await;
    worker.deliver_due().await.unwrap();
    assert_eq!(message(&db, refused).await.status, "FAILED");

    // Attempts are bounded.
    let stubborn = queue(&db, "down@outbox.test").await;
    for _ in 0..outbox::MAX_ATTEMPTS {
        transport
            .answers
            .lock()
            .unwrap()
            .push_back(Err(DeliveryError::Transient("connection refused".into())));
        make_due(&db, stubborn).await;
        worker.deliver_due().await.unwrap();
    }
    let given_up = message(&db, stubborn).await;
    assert_eq!(given_up.status, "FAILED");
    assert_eq!(given_up.attempts, outbox::MAX_ATTEMPTS);

    // A message claimed by an instance that died may have gone out: it is
    // marked failed, never sent a second time.
    let abandoned = queue(&db, "maybe@outbox.test").await;
    let mut active: entity::outbox_message::ActiveModel = message(&db, abandoned).await.into();
    active.status = Set("SENDING".into());
    active.attempts = Set(1);
    active.locked_until = Set(Some(Utc::now() - chrono::Duration::seconds(1)));
    active.update(&db).await.unwrap();
    let sent_before = transport.sent.lock().unwrap().len();
    worker.deliver_due().await.unwrap();
    let unknown = message(&db, abandoned).await;
    assert_eq!(unknown.status, "FAILED");
    assert!(unknown.last_error.unwrap().contains("outcome unknown"));
    assert_eq!(transport.sent.lock().unwrap().len(), sent_before);
}
