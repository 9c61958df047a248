//! GraphQL multipart requests (the upload specification), read with limits of
//! our own.
//!
//! async-graphql's reader gives every part the file size limit, so the
//! `operations` and `map` parts could be ten times the JSON body limit and be
//! parsed whole in memory. Here they are held to the JSON body limit, each file
//! to the upload limit, and a request to [`MAX_FILES`] files.

use std::{collections::HashMap, io::Seek};

use async_graphql::{BatchRequest, UploadValue};
use poem::Body;

/// Most files one request may carry.
pub const MAX_FILES: usize = 4;

/// Why a multipart body was refused: too large, or malformed (with the reason).
#[derive(Debug)]
pub enum MultipartError {
    TooLarge(String),
    Invalid(String),
}

/// Read a multipart GraphQL request whose `content_type` names its boundary.
pub async fn read(
    body: Body,
    content_type: &str,
    max_json_bytes: usize,
    max_file_bytes: usize,
) -> Result<BatchRequest, MultipartError> {
    let boundary = multer::parse_boundary(content_type)
        .map_err(|e| MultipartError::Invalid(format!("no boundary: {e}")))?;
    let json = max_json_bytes as u64;
    let limits = multer::SizeLimit::new()
        .for_field("operations", json)
        .for_field("map", json)
        .per_field(max_file_bytes as u64)
        .whole_stream(2 * json + (MAX_FILES * max_file_bytes) as u64 + 64 * 1024);
    let mut multipart = multer::Multipart::with_constraints(
        body.into_bytes_stream(),
        boundary,
        multer::Constraints::new().size_limit(limits),
    );
    let mut operations = None;
    let mut map: Option<HashMap<String, Vec<String>>> = None;
    let mut files = Vec::new();
    while let Some(mut field) = multipart.next_field().await.map_err(refusal)? {
        match field.name() {
            Some("operations") => {
                let bytes = field.bytes().await.map_err(refusal)?;
                operations = Some(
                    serde_json::from_slice::<BatchRequest>(&bytes)
                        .map_err(|e| MultipartError::Invalid(format!("operations: {e}")))?,
                );
            }
            Some("map") => {
                let bytes = field.bytes().await.map_err(refusal)?;
                map = Some(
                    serde_json::from_slice(&bytes)
                        .map_err(|e| MultipartError::Invalid(format!("map: {e}")))?,
                );
            }
            Some(name) if field.file_name().is_some() => {
                if files.len() == MAX_FILES {
                    return Err(MultipartError::Invalid(format!(
                        "at most {MAX_FILES} files may be sent at once"
                    )));
                }
                let name = name.to_owned();
                let filename = field.file_name().unwrap_or_default().to_owned();
                let content_type = field.content_type().map(ToString::to_string);
                let file = spill(&mut field).await?;
                files.push((name, filename, content_type, file));
            }
            _ => {}
        }
    }
    let mut request = operations
        .ok_or_else(|| MultipartError::Invalid("the operations part is missing".into()))?;
    let mut map = map.ok_or_else(|| MultipartError::Invalid("the map part is missing".into()))?;
    for (name, filename, content_type, file) in files {
        let Some(paths) = map.remove(&name) else {
            continue;
        };
        for path in paths {
            let upload = UploadValue {
                filename: filename.clone(),
                content_type: content_type.clone(),
                content: file
                    .try_clone()
                    .map_err(|e| MultipartError::Invalid(e.to_string()))?,
            };
            match &mut request {
                BatchRequest::Single(request) => request.set_upload(&path, upload),
                BatchRequest::Batch(requests) => {
                    if let Some((index, path)) = path.split_once('.')
                        && let Some(request) = index
                            .parse::<usize>()
                            .ok()
                            .and_then(|i| requests.get_mut(i))
                    {
                        request.set_upload(path, upload);
                    }
                }
            }
        }
    }
    if !map.is_empty() {
        return Err(MultipartError::Invalid(
            "the map names files that were not sent".into(),
        ));
    }
    Ok(request)
}

/// A file part written to an anonymous temporary file as it arrives, never
/// held whole in memory; the file is read from its start.
async fn spill(field: &mut multer::Field<'_>) -> Result<std::fs::File, MultipartError> {
    use tokio::io::AsyncWriteExt;
    let kept =
        |e: std::io::Error| MultipartError::Invalid(format!("the file could not be kept: {e}"));
    let file = tokio::task::spawn_blocking(tempfile::tempfile)
        .await
        .map_err(|e| MultipartError::Invalid(e.to_string()))?
        .map_err(kept)?;
    let mut file = tokio::fs::File::from_std(file);
    while let Some(chunk) = field.chunk().await.map_err(refusal)? {
        file.write_all(&chunk).await.map_err(kept)?;
    }
    file.flush().await.map_err(kept)?;
    let mut file = file.into_std().await;
    file.rewind().map_err(kept)?;
    Ok(file)
}

fn refusal(error: multer::Error) -> MultipartError {
    match error {
        multer::Error::FieldSizeExceeded { limit, field_name } => {
            MultipartError::TooLarge(match field_name.as_deref() {
                Some(name @ ("operations" | "map")) => {
                    format!("The {name} part is larger than {limit} bytes.")
                }
                _ => format!("The file is larger than the limit of {limit} bytes."),
            })
        }
        multer::Error::StreamSizeExceeded { limit } => {
            MultipartError::TooLarge(format!("The request is larger than {limit} bytes."))
        }
        other => MultipartError::Invalid(other.to_string()),
    }
}
