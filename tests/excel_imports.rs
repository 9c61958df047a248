//! Excel workbooks in the import center, end to end over HTTP: the sheet and
//! header row an admin chooses, cells read as the text a person sees, row
//! numbers as the sheet shows them, and files that are not workbooks refused.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use common::{Backend, PASSWORD, TestApp, error_code, error_fields};
use rust_xlsxwriter::{Format, Formula, Workbook};
use serde_json::{Value, json};

const PREVIEW: &str = "mutation($input: ImportInput!) { previewImport(input: $input) {
    headers sheets totalRows validRows invalidRows
    sampleRows { rowNumber status errors { field message } values } } }";

/// A workbook as an HR system exports it: a summary sheet first, then the
/// staff on a sheet of their own under a title and a blank row, employee
/// numbers with their leading zeros (as text, and as a number in a column
/// formatted `000000`), a title typed as a number and one given by a formula.
fn hr_workbook() -> Vec<u8> {
    let mut workbook = Workbook::new();
    let summary = workbook.add_worksheet().set_name("Summary").unwrap();
    summary.write(0, 0, "Headcount").unwrap();
    summary.write(0, 1, 3).unwrap();
    let staff = workbook.add_worksheet().set_name("Staff").unwrap();
    staff.write(0, 0, "Staff export, December").unwrap();
    let header = [
        "Email",
        "First Name",
        "Last Name",
        "Employee Number",
        "Job Title",
    ];
    for (column, name) in header.iter().enumerate() {
        staff.write(2, column as u16, *name).unwrap();
    }
    let text = Format::new().set_num_format("@");
    let rows: [(&str, &str, &str, &str); 3] = [
        ("ana.ortiz@riverside.test", "Ana", "Ortiz", "000417"),
        ("not an email", "Bo", "Lind", "000418"),
        ("cy.ng@riverside.test", "Cy", "Ng", "012000"),
    ];
    let six_digits = Format::new().set_num_format("000000");
    for (i, (email, first, last, number)) in rows.iter().enumerate() {
        let row = 3 + i as u32;
        staff.write(row, 0, *email).unwrap();
        staff.write(row, 1, *first).unwrap();
        staff.write(row, 2, *last).unwrap();
        if i == 2 {
            let typed: u32 = number.parse().unwrap();
            staff.write_with_format(row, 3, typed, &six_digits).unwrap();
        } else {
            staff.write_with_format(row, 3, *number, &text).unwrap();
        }
    }
    // A formula reads as the value Excel saved with it, never evaluated here
    // (evaluated, it would say "CHARGE NURSE").
    staff
        .write_formula(
            3,
            4,
            Formula::new("=UPPER(\"charge nurse\")").set_result("Charge Nurse"),
        )
        .unwrap();
    staff.write(5, 4, 42).unwrap();
    workbook.save_to_buffer().unwrap()
}

async fn admin(app: &TestApp) -> String {
    let org = app.organization("Riverside").await;
    app.user(org, "admin@riverside.test", &["Admin"]).await;
    app.login("admin@riverside.test", PASSWORD).await
}

fn sample(preview: &Value, row: u64) -> &Value {
    preview["sampleRows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rowNumber"] == row)
        .unwrap_or_else(|| panic!("no row {row} in {preview}"))
}

#[each_backend]
#[tokio::test]
async fn a_workbook_imports_the_chosen_sheet_from_its_header_row_and_keeps_leading_zeros(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let admin = admin(&app).await;
    let input = json!({ "kind": "USERS", "sheet": "Staff", "headerRow": 3 });

    let (_, body) = app
        .upload(&admin, PREVIEW, input.clone(), "staff.xlsx", hr_workbook())
        .await;
    let preview = &body["data"]["previewImport"];
    assert_eq!(
        preview["sheets"],
        json!(["Summary", "Staff"]),
        "{backend:?}: {body}"
    );
    assert_eq!(
        preview["headers"],
        json!([
            "Email",
            "First Name",
            "Last Name",
            "Employee Number",
            "Job Title"
        ])
    );
    assert_eq!(preview["totalRows"], 3, "{preview}");
    assert_eq!(preview["invalidRows"], 1, "{preview}");
    // Rows are numbered as the sheet numbers them.
    assert_eq!(sample(preview, 4)["values"]["Employee Number"], "000417");
    assert_eq!(sample(preview, 4)["values"]["Job Title"], "Charge Nurse");
    assert_eq!(sample(preview, 5)["status"], "FAILED");
    assert_eq!(sample(preview, 5)["errors"][0]["field"], "email");
    assert_eq!(sample(preview, 6)["values"]["Job Title"], "42");
    assert_eq!(sample(preview, 6)["values"]["Employee Number"], "012000");

    let job = app
        .import_finished(&admin, input, "staff.xlsx", hr_workbook())
        .await;
    assert_eq!(job["status"], "FINISHED_WITH_ERRORS", "{backend:?}: {job}");
    assert_eq!(job["createdCount"], 2, "{job}");
    assert_eq!(job["failedCount"], 1, "{job}");
    assert!(job["failedRowsXlsxUrl"].is_string(), "{job}");

    let data = app
        .ok(
            &admin,
            "{ users(first: 10, filter: { search: \"riverside.test\" }) { edges { node { email externalId title } } } }",
            json!({}),
        )
        .await;
    let people: Vec<(String, String, String)> = data["users"]["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let n = &e["node"];
            (
                n["email"].as_str().unwrap().to_owned(),
                n["externalId"].as_str().unwrap_or("").to_owned(),
                n["title"].as_str().unwrap_or("").to_owned(),
            )
        })
        .filter(|(email, _, _)| email != "admin@riverside.test")
        .collect();
    assert_eq!(
        people,
        [
            (
                "ana.ortiz@riverside.test".into(),
                "000417".into(),
                "Charge Nurse".into()
            ),
            ("cy.ng@riverside.test".into(), "012000".into(), "42".into()),
        ],
        "{data}"
    );
}

#[each_backend]
#[tokio::test]
async fn the_first_sheet_and_its_first_row_are_read_unless_told_otherwise(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = admin(&app).await;
    let (_, body) = app
        .upload(
            &admin,
            PREVIEW,
            json!({ "kind": "USERS" }),
            "staff.xlsx",
            hr_workbook(),
        )
        .await;
    let preview = &body["data"]["previewImport"];
    assert_eq!(
        preview["headers"],
        json!(["Headcount", "3"]),
        "{backend:?}: {body}"
    );

    // The second sheet's first non-empty row is its title, not its header.
    let (_, body) = app
        .upload(
            &admin,
            PREVIEW,
            json!({ "kind": "USERS", "sheet": "staff" }),
            "staff.xlsx",
            hr_workbook(),
        )
        .await;
    assert_eq!(
        body["data"]["previewImport"]["headers"],
        json!(["Staff export, December"]),
        "{body}"
    );
}

#[each_backend]
#[tokio::test]
async fn files_that_are_not_workbooks_or_name_what_is_not_there_are_refused_clearly(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let admin = admin(&app).await;
    let refusal = |input: Value, bytes: Vec<u8>| {
        let app = &app;
        let admin = &admin;
        async move {
            let (status, body) = app.upload(admin, PREVIEW, input, "staff.xlsx", bytes).await;
            assert_eq!(status, 200, "{body}");
            assert_eq!(error_code(&body), "BAD_USER_INPUT", "{body}");
            error_fields(&body)
        }
    };
    let fields = refusal(
        json!({ "kind": "USERS", "sheet": "Payroll" }),
        hr_workbook(),
    )
    .await;
    assert_eq!(fields[0].0, "sheet", "{fields:?}");
    assert!(fields[0].1.contains("Summary, Staff"), "{fields:?}");

    let fields = refusal(
        json!({ "kind": "USERS", "sheet": "Staff", "headerRow": 2 }),
        hr_workbook(),
    )
    .await;
    assert_eq!(fields[0].0, "headerRow", "{fields:?}");

    // A ZIP archive that is not a workbook, and an Excel 97-2003 file.
    let fields = refusal(
        json!({ "kind": "USERS" }),
        b"PK\x03\x04\x14\x00garbage".to_vec(),
    )
    .await;
    assert_eq!(fields[0].0, "file", "{fields:?}");
    let mut legacy = b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1".to_vec();
    legacy.extend([0; 504]);
    let fields = refusal(json!({ "kind": "USERS" }), legacy).await;
    assert!(fields[0].1.contains(".xls"), "{fields:?}");

    // A CSV file has no sheets.
    let fields = refusal(
        json!({ "kind": "USERS", "sheet": "Staff" }),
        b"Email\nana@riverside.test\n".to_vec(),
    )
    .await;
    assert_eq!(fields[0].0, "sheet", "{fields:?}");
}

/// Dates typed into Excel are numbers formatted as dates; they read as the
/// date a person sees, and a patient's date of birth goes in as that date.
#[tokio::test]
async fn dates_in_a_workbook_read_as_the_dates_people_typed() {
    use rust_xlsxwriter::ExcelDateTime;
    for backend in common::backends().await {
        let app = TestApp::spawn(backend).await;
        let admin = admin(&app).await;
        let project = app
            .ok(
                &admin,
                "mutation { createProject(input: { name: \"Cardiology follow-up\" }) { id } }",
                json!({}),
            )
            .await["createProject"]["id"]
            .as_str()
            .unwrap()
            .to_owned();

        let mut workbook = Workbook::new();
        let sheet = workbook.add_worksheet();
        for (column, name) in ["MRN", "First Name", "Last Name", "DOB"].iter().enumerate() {
            sheet.write(0, column as u16, *name).unwrap();
        }
        sheet.write(1, 0, "00981").unwrap();
        sheet.write(1, 1, "Chloe").unwrap();
        sheet.write(1, 2, "Okafor").unwrap();
        let date = Format::new().set_num_format("mm/dd/yyyy");
        let born = ExcelDateTime::from_ymd(1984, 3, 12).unwrap();
        sheet
            .write_datetime_with_format(1, 3, &born, &date)
            .unwrap();
        let file = workbook.save_to_buffer().unwrap();

        let input = json!({ "kind": "PATIENTS", "projectId": project });
        let (_, body) = app
            .upload(
                &admin,
                PREVIEW,
                input.clone(),
                "patients.xlsx",
                file.clone(),
            )
            .await;
        let preview = &body["data"]["previewImport"];
        assert_eq!(
            sample(preview, 2)["values"]["DOB"],
            "1984-03-12",
            "{backend:?}: {body}"
        );
        assert_eq!(preview["invalidRows"], 0, "{preview}");

        let job = app
            .import_finished(&admin, input, "patients.xlsx", file)
            .await;
        assert_eq!(job["status"], "FINISHED", "{backend:?}: {job}");
        let data = app
            .ok(
                &admin,
                "query($id: ID!) { project(id: $id) { enrollments(first: 10) { edges { node { externalId patient { dateOfBirth } } } } } }",
                json!({ "id": project }),
            )
            .await;
        let enrolled = &data["project"]["enrollments"]["edges"][0]["node"];
        assert_eq!(enrolled["externalId"], "00981", "{data}");
        assert_eq!(enrolled["patient"]["dateOfBirth"], "1984-03-12", "{data}");
    }
}
