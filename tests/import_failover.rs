//! An import survives the death of the instance running it: another instance
//! takes the job over once the lease lapses and finishes it from the last
//! committed batch, with exact counts (no row lost, none written twice).

// Tests look at the database as it is, across organisations.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use std::{
    process::Command,
    time::{Duration, Instant},
};

use common::{Backend, PASSWORD, Storage, TestApp};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

const ROWS: usize = 20_000;

#[each_backend]
#[tokio::test]
async fn a_job_whose_instance_is_killed_is_finished_by_another_with_exact_counts(backend: Backend) {
    // A short lease: the test waits for it to lapse.
    take_over(backend, "KILL", 2, Moment::BetweenBatches).await;
}

#[each_backend]
#[tokio::test]
async fn a_job_whose_instance_is_killed_right_after_claiming_it_is_finished_by_another(
    backend: Backend,
) {
    take_over(backend, "KILL", 2, Moment::AfterClaim).await;
}

#[each_backend]
#[tokio::test]
async fn a_job_whose_instance_shuts_down_is_handed_back_at_once(backend: Backend) {
    // A lease far longer than the test may take: only a hand-back lets B in.
    take_over(backend, "TERM", 600, Moment::BetweenBatches).await;
}

/// [`ROWS`] new staff, then a last row repeating the first's email.
fn file_with_a_late_repeat() -> Vec<u8> {
    let mut file = common::staff_file(ROWS, "bulk.test");
    file.extend_from_slice(b"staff0@bulk.test,Again,Repeated,RN\n");
    file
}

/// When instance A is stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Moment {
    /// A holds the job and has committed nothing yet (its first batch is in flight).
    AfterClaim,
    /// A has committed at least one batch and has more to go (the next in flight).
    BetweenBatches,
}

/// Start a job on instance A (the binary), stop A with `signal` at `moment`,
/// and check that instance B finishes it exactly.
async fn take_over(backend: common::Backend, signal: &str, lease_seconds: u64, moment: Moment) {
    {
        let storage = Storage::new(backend).await;
        let db = rollcall::app::connect_database(&storage.config())
            .await
            .unwrap();
        rollcall::app::migrate(&db).await.unwrap();
        let (org, _) = rollcall::services::accounts::create_organization(&db, "Bulk Care")
            .await
            .unwrap();

        // Instance A: the real binary, as operators run it.
        let mut command = Command::new(env!("CARGO_BIN_EXE_rollcall"));
        command
            .env("DATABASE_URL", &storage.database_url)
            .env("ROLLCALL_REDIS_PREFIX", &storage.redis_prefix)
            .env("ROLLCALL_IMPORT_LEASE_SECONDS", lease_seconds.to_string());
        match &storage.redis_url {
            Some(url) => command.env("REDIS_URL", url),
            None => command.env_remove("REDIS_URL"),
        };
        let (mut a, address) = common::spawn_binary(command);
        let a_app = TestApp::attach(storage.clone(), db.clone(), address);
        a_app.user(org.id, "admin@bulk.test", &["Admin"]).await;
        let token = a_app.login("admin@bulk.test", PASSWORD).await;

        let id: uuid::Uuid = a_app
            .start_staff_import(&token, file_with_a_late_repeat())
            .await
            .parse()
            .unwrap();

        // Stop A as soon as the moment comes.
        let job = || async {
            entity::import_job::Entity::find_by_id(id)
                .one(&db)
                .await
                .unwrap()
                .unwrap()
        };
        let started = Instant::now();
        loop {
            let current = job().await;
            let now = match moment {
                Moment::AfterClaim => current.status == "IN_PROGRESS",
                Moment::BetweenBatches => current.processed_rows > 0,
            };
            if now {
                assert!(
                    current.processed_rows < ROWS as i32,
                    "{backend:?}: A finished before it could be killed"
                );
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "A never committed a batch"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(
            Command::new("kill")
                .args([format!("-{signal}"), a.id().to_string()])
                .status()
                .unwrap()
                .success()
        );
        a.wait().unwrap();
        let at_death = job().await;
        assert_eq!(at_death.status, "IN_PROGRESS");
        if signal == "TERM" {
            assert!(
                at_death.lease_expires_at.unwrap() <= chrono::Utc::now(),
                "{backend:?}: a graceful shutdown hands the job back"
            );
        }

        // Instance B takes it over when the lease lapses, and finishes it.
        let _b =
            TestApp::spawn_with(storage.clone(), |c| c.import_lease_seconds = lease_seconds).await;
        let started = Instant::now();
        let done = loop {
            let current = job().await;
            if current.status != "IN_PROGRESS" && current.status != "QUEUED" {
                break current;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "B never finished: {current:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(done.status, "FINISHED_WITH_ERRORS", "{backend:?}");
        assert_ne!(done.lease_owner, at_death.lease_owner);
        assert_eq!(
            (
                done.processed_rows,
                done.created_count,
                done.updated_count,
                done.skipped_count,
                done.failed_count
            ),
            (ROWS as i32 + 1, ROWS as i32, 0, 0, 1),
            "{backend:?}"
        );
        let rows = entity::import_row::Entity::find()
            .filter(entity::import_row::Column::JobId.eq(id))
            .count(&db)
            .await
            .unwrap();
        assert_eq!(
            rows,
            ROWS as u64 + 1,
            "{backend:?}: every row's outcome once"
        );
        // The last row repeats the first, which A wrote before it died: B
        // remembers it from the stored rows.
        let repeat = entity::import_row::Entity::find_by_id((id, ROWS as i32 + 2))
            .one(&db)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(repeat.status, "FAILED", "{backend:?}");
        assert!(
            repeat.errors.to_string().contains("row 2"),
            "{backend:?}: {}",
            repeat.errors
        );
        // The file is stored in chunks of rows, so B resumed inside one of
        // many, skipping those A had finished.
        let chunks = entity::import_file_chunk::Entity::find()
            .filter(entity::import_file_chunk::Column::JobId.eq(id))
            .count(&db)
            .await
            .unwrap();
        assert!(chunks > 5, "{backend:?}: the file in {chunks} chunks");
        let users = entity::user::Entity::find()
            .filter(entity::user::Column::OrganizationId.eq(org.id))
            .count(&db)
            .await
            .unwrap();
        assert_eq!(
            users,
            ROWS as u64 + 1,
            "{backend:?}: every user once, and the admin"
        );
    }
}
