//! An import's file is stored as its header (`import_files`, now `chunked`)
//! and spans of whole rows of some tens of kilobytes each (`import_file_chunks`),
//! so that the job reads one span at a time instead of the whole file. Files
//! stored before stay whole (`chunked` false) and are read as before.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(ImportFiles::Table)
                    .add_column(boolean(ImportFiles::Chunked).default(false))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ImportFileChunks::Table)
                    .col(uuid(ImportFileChunks::JobId))
                    .col(integer(ImportFileChunks::Seq))
                    .col(integer(ImportFileChunks::AfterRow))
                    .col(integer(ImportFileChunks::RowCount))
                    .col(blob(ImportFileChunks::Data))
                    .primary_key(
                        Index::create()
                            .col(ImportFileChunks::JobId)
                            .col(ImportFileChunks::Seq),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_import_file_chunks_job")
                            .from(ImportFileChunks::Table, ImportFileChunks::JobId)
                            .to(ImportJobs::Table, ImportJobs::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ImportFileChunks::Table).to_owned())
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(ImportFiles::Table)
                    .drop_column(ImportFiles::Chunked)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum ImportFiles {
    Table,
    Chunked,
}

#[derive(DeriveIden)]
enum ImportFileChunks {
    Table,
    JobId,
    Seq,
    AfterRow,
    RowCount,
    Data,
}

#[derive(DeriveIden)]
enum ImportJobs {
    Table,
    Id,
}
