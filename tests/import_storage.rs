//! How an import's file is kept: as its header and chunks of whole rows, which
//! the job reads one at a time. A job queued before files were kept in chunks
//! (its file stored whole, as uploaded) still runs after the upgrade.

// The test writes a job as an earlier version stored it, past the services.
#![allow(clippy::disallowed_methods)]
#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use common::{Backend, TestApp};
use rust_xlsxwriter::{Format, Workbook};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::json;
use uuid::Uuid;

/// A workbook whose staff sit on its second sheet under a title row, employee
/// numbers formatted with their leading zeros.
fn workbook(emails: &[&str]) -> Vec<u8> {
    let mut workbook = Workbook::new();
    workbook.add_worksheet().set_name("Notes").unwrap();
    let staff = workbook.add_worksheet().set_name("Staff").unwrap();
    staff.write(0, 0, "Staff export").unwrap();
    for (column, name) in ["Email", "First Name", "Last Name", "Employee Number"]
        .iter()
        .enumerate()
    {
        staff.write(1, column as u16, *name).unwrap();
    }
    let zeros = Format::new().set_num_format("000000");
    for (i, email) in emails.iter().enumerate() {
        let row = 2 + i as u32;
        staff.write(row, 0, *email).unwrap();
        staff.write(row, 1, "Dana").unwrap();
        staff.write(row, 2, format!("Reyes{i}")).unwrap();
        staff
            .write_with_format(row, 3, 40 + i as u32, &zeros)
            .unwrap();
    }
    workbook.save_to_buffer().unwrap()
}

#[each_backend]
#[tokio::test]
async fn a_job_whose_file_was_stored_whole_still_runs(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, admin) = app.admin_in("Lakeside", "admin@lakeside.test").await;
    let input = json!({ "kind": "USERS", "sheet": "Staff", "headerRow": 2 });

    // A job of today: its file in chunks.
    let first = app
        .start_import(
            &admin,
            input.clone(),
            "staff.xlsx",
            workbook(&["a@lakeside.test"]),
        )
        .await;
    let done = app.finished_job(&admin, &first).await;
    assert_eq!(done["createdCount"], 1, "{backend:?}: {done}");
    let first = Uuid::parse_str(&first).unwrap();
    let chunks = entity::import_file_chunk::Entity::find()
        .filter(entity::import_file_chunk::Column::JobId.eq(first))
        .count(&app.db)
        .await
        .unwrap();
    assert_eq!(chunks, 1, "{backend:?}");

    // The same job as an earlier version queued it: the workbook whole,
    // its sheet and header row in the job's settings.
    let job = entity::import_job::Entity::find_by_id(first)
        .one(&app.db)
        .await
        .unwrap()
        .unwrap();
    let queued = entity::import_job::Model {
        id: Uuid::now_v7(),
        status: "QUEUED".into(),
        total_rows: 2,
        processed_rows: 0,
        created_count: 0,
        updated_count: 0,
        skipped_count: 0,
        failed_count: 0,
        started_at: None,
        finished_at: None,
        lease_owner: None,
        lease_expires_at: None,
        ..job
    };
    entity::import_job::Entity::insert(entity::import_job::ActiveModel::from(queued.clone()))
        .exec_without_returning(&app.db)
        .await
        .unwrap();
    entity::import_file::Entity::insert(entity::import_file::ActiveModel {
        job_id: Set(queued.id),
        data: Set(workbook(&["b@lakeside.test", "c@lakeside.test"])),
        chunked: Set(false),
    })
    .exec_without_returning(&app.db)
    .await
    .unwrap();

    let done = app.finished_job(&admin, &queued.id.to_string()).await;
    assert_eq!(done["status"], "FINISHED", "{backend:?}: {done}");
    assert_eq!(done["createdCount"], 2, "{done}");
    let data = app
        .ok(
            &admin,
            "{ users(first: 10, filter: { search: \"reyes\" }) { edges { node { email externalId } } } }",
            json!({}),
        )
        .await;
    let mut people: Vec<(String, String)> = data["users"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["node"]["email"].as_str().unwrap().to_owned(),
                e["node"]["externalId"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    people.sort();
    assert_eq!(
        people,
        [
            ("a@lakeside.test".to_owned(), "000040".to_owned()),
            ("b@lakeside.test".to_owned(), "000040".to_owned()),
            ("c@lakeside.test".to_owned(), "000041".to_owned()),
        ],
        "{backend:?}: {data}"
    );
}
