//! `GET /openapi.json`: the API's OpenAPI 3.1 document, written by hand next to the handlers.

use axum::Json;
use serde_json::{json, Value};

/// `GET /openapi.json`.
pub async fn openapi() -> Json<Value> {
    Json(document())
}

/// The OpenAPI document.
pub fn document() -> Value {
    let error = json!({ "$ref": "#/components/responses/Error" });
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "queue-vector reference service",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Index source files into a vector index through a PostgreSQL queue, then search them. Every error body is {\"error\": \"...\"}."
        },
        "paths": {
            "/index": { "post": {
                "summary": "Queue files for indexing (one queue row per file, one transaction)",
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/IndexRequest" } } } },
                "responses": {
                    "202": { "$ref": "#/components/responses/Accepted" },
                    "400": error, "413": error, "415": error, "422": error
                }
            }},
            "/index/repository": { "post": {
                "summary": "Queue a git repository (absolute local path or URL) at a ref for indexing",
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/RepositoryRequest" } } } },
                "responses": { "202": { "$ref": "#/components/responses/Accepted" }, "400": error, "422": error }
            }},
            "/jobs/{id}": { "get": {
                "summary": "A job's status, file counts, per-file errors and skip reasons",
                "parameters": [{ "name": "id", "in": "path", "required": true, "schema": { "type": "string", "format": "uuid" } }],
                "responses": {
                    "200": { "description": "The job", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Job" } } } },
                    "400": error, "404": error
                }
            }},
            "/search": { "get": {
                "summary": "Chunks of a project most similar to a query",
                "parameters": [
                    { "name": "project", "in": "query", "required": true, "schema": { "type": "string" } },
                    { "name": "q", "in": "query", "required": true, "schema": { "type": "string" } },
                    { "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 1000, "default": 10 } }
                ],
                "responses": { "200": { "description": "Hits, best first" }, "400": error, "503": error }
            }},
            "/projects/{project}": { "delete": {
                "summary": "Remove every chunk of a project",
                "parameters": [{ "name": "project", "in": "path", "required": true, "schema": { "type": "string" } }],
                "responses": { "200": { "description": "Deleted" }, "400": error, "503": error }
            }},
            "/healthz": { "get": { "summary": "Liveness", "responses": { "200": { "description": "Up" } } } },
            "/readyz": { "get": { "summary": "Readiness: database, Qdrant, model", "responses": { "200": { "description": "Ready" }, "503": { "description": "Not ready; failing checks named" } } } },
            "/metrics": { "get": { "summary": "Prometheus metrics", "responses": { "200": { "description": "text/plain exposition format" } } } },
            "/admin/queue": { "get": { "summary": "Queue stats", "security": [{ "bearer": [] }], "responses": { "200": { "description": "Stats" }, "401": error } } },
            "/admin/queue/pause": { "post": { "summary": "Pause claims", "security": [{ "bearer": [] }], "responses": { "200": { "description": "Paused" }, "401": error } } },
            "/admin/queue/resume": { "post": { "summary": "Resume claims", "security": [{ "bearer": [] }], "responses": { "200": { "description": "Resumed" }, "401": error } } },
            "/admin/queue/drain": { "post": {
                "summary": "Wait until no row is in flight",
                "security": [{ "bearer": [] }],
                "parameters": [{ "name": "timeout_ms", "in": "query", "schema": { "type": "integer", "default": 30000, "maximum": 300000 } }],
                "responses": { "200": { "description": "Drained" }, "401": error, "504": { "description": "Timed out; body has the queue state" } }
            }},
            "/admin/queue/redrive": { "post": {
                "summary": "Dead rows back to pending (all, or the given ids)",
                "security": [{ "bearer": [] }],
                "requestBody": { "required": false, "content": { "application/json": { "schema": { "type": "object", "properties": { "ids": { "type": "array", "items": { "type": "integer" } } } } } } },
                "responses": { "200": { "description": "Redriven ids" }, "400": error, "401": error }
            }}
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "responses": {
                "Error": { "description": "Error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } },
                "Accepted": {
                    "description": "Queued; poll the Location",
                    "headers": { "Location": { "schema": { "type": "string" } } },
                    "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Accepted" } } }
                }
            },
            "schemas": {
                "Error": { "type": "object", "required": ["error"], "properties": { "error": { "type": "string" } } },
                "IndexRequest": {
                    "type": "object", "required": ["project", "files"],
                    "properties": {
                        "project": { "type": "string", "pattern": "^[A-Za-z0-9._-]{1,128}$" },
                        "files": { "type": "array", "minItems": 1, "maxItems": 1000, "items": {
                            "type": "object", "required": ["path", "content"],
                            "properties": { "path": { "type": "string", "description": "relative, no '..'" }, "content": { "type": "string" } }
                        } }
                    }
                },
                "RepositoryRequest": {
                    "type": "object", "required": ["project", "repository", "ref"],
                    "properties": { "project": { "type": "string" }, "repository": { "type": "string" }, "ref": { "type": "string" } }
                },
                "Accepted": {
                    "type": "object",
                    "properties": { "job_id": { "type": "string", "format": "uuid" }, "status": { "type": "string" }, "files": { "type": "integer" } }
                },
                "Job": {
                    "type": "object",
                    "properties": {
                        "id": { "type": "string", "format": "uuid" },
                        "project": { "type": "string" },
                        "kind": { "enum": ["files", "repository"] },
                        "status": { "enum": ["pending", "processing", "completed", "partially_failed", "failed"] },
                        "files": { "type": "object", "properties": { "total": { "type": "integer" }, "done": { "type": "integer" }, "failed": { "type": "integer" }, "skipped": { "type": "integer" } } },
                        "chunks_stored": { "type": "integer" },
                        "issues": { "type": "array", "items": { "type": "object", "properties": {
                            "path": { "type": "string" }, "status": { "enum": ["failed", "skipped"] },
                            "error": { "type": "string" }, "skip_reason": { "type": "string" } } } },
                        "created_at": { "type": "string", "format": "date-time" },
                        "updated_at": { "type": "string", "format": "date-time" },
                        "finished_at": { "type": ["string", "null"], "format": "date-time" }
                    }
                }
            }
        }
    })
}
