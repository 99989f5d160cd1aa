#!/usr/bin/env python3
"""Writes docs/openapi.json: the OpenAPI 3.1 description of every route engram-server serves.

    scripts/openapi.py           rewrite docs/openapi.json
    scripts/openapi.py --check   exit 1 when docs/openapi.json is not what this script writes

The server embeds docs/openapi.json at build time and answers it at GET /openapi.json. The schemas are
written once here and shared by the Mem0 OSS routes and their Platform twins. The test `server_openapi`
checks that every route the server registers is described, that every described route answers, that the
document is valid OpenAPI 3.1, and that live answers match their schemas.
"""
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "docs", "openapi.json")


def ref(name):
    return {"$ref": "#/components/schemas/" + name}


def version():
    with open(os.path.join(ROOT, "include", "engram", "version.hpp")) as f:
        return re.search(r'#define ENGRAM_VERSION_STRING "([^"]+)"', f.read()).group(1)


STRING_OR_LIST = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}],
                  "description": "a list of strings, or Mem0's string form (commas separate items)"}
SCOPE_FIELDS = {
    "user_id": {"type": "string", "description": "the user the memories belong to"},
    "agent_id": {"type": "string", "description": "the agent the memories belong to"},
    "run_id": {"type": "string", "description": "the run (session) the memories belong to"},
    "app_id": {"type": "string", "description": "the app the memories belong to, within the project"},
    "org_id": {"type": "string", "description": "the organization of the project (with project_id; a key bound to a "
                                               "project may name only its own: 403)"},
    "project_id": {"type": "string", "description": "the project the memories belong to (with org_id; none: the key's "
                                                   "own, or the default project engram/engram)"},
}
OUTPUT_FIELDS = {
    "output_format": {"enum": ["v1.0", "v1.1", None],
                      "description": "v1.1 (default): {\"results\": [...]}; v1.0: the bare list"},
    "version": {"enum": ["v1", "v2", None], "description": "accepted as Mem0 sends it"},
}
FILTERS = {"description": "a filter tree in Mem0's grammar (docs/library.md): field conditions with eq, ne, in, "
                          "nin, gt, gte, lt, lte, contains, icontains, wildcard \"*\", combined with AND, OR, NOT; "
                          "fields are metadata keys, record fields (created_at, valid_from, invalid_at, ...) and "
                          "structured_attributes.<name>; "
                          "scope ids at its top level name the scope. In a query string: the tree as JSON text.",
           "oneOf": [{"type": "object"}, {"type": "string"}]}
GRAPH_NEEDS = "needs the server started with --entities on (400 without)"
EXPORT_FIELDS_NOTE = ("An unknown field is a 400 naming it. A key bound to a user is confined to that user, one bound "
                      "to a project to that project (naming another is a 403).")
LISTING_FIELDS = {
    "filters": FILTERS,
    "enable_graph": {"type": ["boolean", "null"],
                     "description": "add `relations` beside `results` (searches: the relations of the entities the "
                                    "query names; listings: the scope's), Mem0's graph memory; " + GRAPH_NEEDS},
    "categories": dict(STRING_OR_LIST, description="only memories filed under any of these categories"),
    "start_date": {"type": "string", "description": "only memories created on or after this ISO-8601 date or time"},
    "end_date": {"type": "string", "description": "only memories created on or before this ISO-8601 date or time"},
    "show_expired": {"type": "boolean", "description": "include memories past their expiration_date"},
    "latest_only": {"type": "boolean", "description": "accepted: every memory engram returns is its latest version"},
    "as_of": {"oneOf": [{"type": "number", "minimum": 0}, {"type": "string"}],
              "description": "only the memories whose fact held at this time (valid_from <= as_of < invalid_at): "
                             "Unix seconds (a number or a string of digits) or ISO-8601 (2024-06-01, "
                             "2024-06-01T12:00:00Z, 2024-06-01T12:00:00+02:00); not with include_invalid"},
    "include_invalid": {"type": "boolean",
                        "description": "every version, the ones closed by a contradiction too "
                                       "(engram-server --on-contradiction supersede)"},
}
WEBHOOK_TYPES = ["memory_add", "memory_update", "memory_delete", "async_add_completed", "entity_purged"]
WEBHOOK_FIELDS = {
    "name": {"type": "string", "minLength": 1, "maxLength": 256},
    "url": {"type": "string", "description": "where events are POSTed: http:// (https:// when the server was built "
                                             "with TLS), at most 2,048 characters, no fragment"},
    "event_types": {"type": ["array", "null"], "items": {"enum": WEBHOOK_TYPES},
                    "description": "the events to send; absent, null or empty: all of them"},
    "is_active": {"type": "boolean", "description": "false: no new deliveries are queued for it (default true)"},
}
WEBHOOK = {"type": "object",
           "required": ["webhook_id", "name", "url", "project", "event_types", "is_active", "created_at", "updated_at"],
           "properties": {
               "webhook_id": {"type": "integer"},
               **WEBHOOK_FIELDS,
               "event_types": {"type": "array", "items": {"enum": WEBHOOK_TYPES}},
               "project": {"type": "string", "description": "the project_id it was created under (echoed: a "
                                                            "webhook is told of every project's memories)"},
               "owner": {"type": "string", "description": "the name of the key that created it"},
               "created_at": {"type": "string", "format": "date-time"},
               "updated_at": {"type": "string", "format": "date-time"},
               "pending_deliveries": {"type": "integer", "description": "events queued for it, not yet delivered"},
               "last_error": {"type": ["string", "null"], "description": "why its oldest pending delivery failed"}}}
SECRET = {"type": "string", "pattern": "^[0-9a-f]{64}$",
          "description": "the HMAC-SHA256 key of X-Engram-Signature; answered only here"}
WEBHOOK_SCHEMAS = {
    "Webhook": WEBHOOK,
    "WebhookCreated": {"allOf": [ref("Webhook"), {"type": "object", "required": ["secret"],
                                                   "properties": {"secret": SECRET}}]},
    "WebhookRequest": {"type": "object", "required": ["name", "url"], "properties": WEBHOOK_FIELDS},
    "WebhookUpdateRequest": {"type": "object", "minProperties": 1, "properties": {
        **WEBHOOK_FIELDS, "rotate_secret": {"type": "boolean", "description": "true: a new secret, answered"}}},
    "WebhookUpdated": {"allOf": [ref("Webhook"), {"type": "object", "required": ["message"], "properties": {
        "message": {"const": "Webhook updated successfully"}, "secret": SECRET}}]},
    "WebhookDelivery": {"type": "object",
                        "required": ["event_id", "delivery_id", "event_type", "created_at", "webhook_id", "project",
                                     "event_details"],
                        "properties": {
                            "event_id": {"type": "string", "description": "the event's id (X-Engram-Event-Id)"},
                            "delivery_id": {"type": "string",
                                            "description": "this delivery's id (X-Engram-Delivery-Id), the same on "
                                                           "each retry: deduplicate by it"},
                            "event_type": {"enum": WEBHOOK_TYPES},
                            "created_at": {"type": "string", "format": "date-time",
                                           "description": "when the event was queued"},
                            "webhook_id": {"type": "integer"}, "project": {"type": "string"},
                            "event_details": {"oneOf": [
                                {"type": "object", "required": ["id", "event", "data"],
                                 "description": "memory_add, memory_update, memory_delete: Mem0's shape plus the "
                                                "scope, metadata and previous_memory",
                                 "properties": {
                                     "id": {"type": "string", "description": "the memory's id"},
                                     "event": {"enum": ["ADD", "UPDATE", "DELETE"]},
                                     "data": {"type": "object", "required": ["memory"],
                                              "properties": {"memory": {"type": "string"}}},
                                     "previous_memory": {"type": "string"},
                                     "metadata": {"type": "object"}, **SCOPE_FIELDS}},
                                dict(ref("Event"), description="async_add_completed: the event as GET "
                                                               "/v1/event/{event_id}/ answers it, without payload, "
                                                               "created_at, started_at and latency"),
                                {"type": "object", "description": "entity_purged: the purged scope's ids and how "
                                                                  "many memories the purge erased; never a text",
                                 "required": ["deleted"],
                                 "properties": {"deleted": {"type": "integer", "minimum": 0}, **SCOPE_FIELDS}}]}}},
}
WEIGHT = {"type": "number", "minimum": 0}
RANKING_WEIGHTS = {"type": "object", "additionalProperties": False,
                   "description": "ranking weights over the defaults (docs/ranking.md)", "properties": {
    "semantic": WEIGHT, "keyword": WEIGHT, "fusion": {"enum": ["weighted", "rrf", "reciprocal_rank"]},
    "rrf_k": WEIGHT, "recency": WEIGHT, "recency_half_life_days": {"type": "number", "exclusiveMinimum": 0},
    "importance": WEIGHT, "importance_key": {"type": "string", "minLength": 1}, "access": WEIGHT,
    "access_saturation": {"type": "number", "exclusiveMinimum": 0},
    "newest_first": {"type": "number", "minimum": 0, "maximum": 1,
                     "description": "0 (off) or a cosine: the latest of statements this similar ranks first"},
    "entity": dict(WEIGHT, description="memories naming the query's entities (needs engram-server --entities on)"),
    "entity_hops": {"enum": [0, 1], "description": "1 (default): entities related to the query's count too"}}}

STRUCTURED_ATTRIBUTES = {
    **{k: {"type": "integer"} for k in ["year", "month", "day", "quarter", "hour", "minute", "day_of_year"]},
    "week_of_year": {"type": "integer", "description": "ISO 8601 week number"},
    "day_of_week": {"enum": ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]},
    "is_weekend": {"type": "boolean", "description": "saturday or sunday"},
}

SCHEMAS = {
    "Error": {"type": "object", "required": ["detail"],
              "properties": {"detail": {"type": "string", "description": "what was wrong, naming the field"}}},
    "Message": {"type": "object", "required": ["role", "content"], "properties": {
        "role": {"type": "string", "description": "user, assistant, system or tool"},
        "content": {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "object"}}],
                    "description": "text, or OpenAI-style content parts (text parts are joined)"},
        "name": {"type": "string"}}},
    "Memory": {"type": "object",
               "required": ["id", "memory", "hash", "metadata", "created_at", "updated_at", "valid_from",
                            "structured_attributes"],
               "properties": {
                   "id": {"type": "string"},
                   "memory": {"type": "string", "description": "the remembered text"},
                   "hash": {"type": "string", "description": "MD5 of the text, as Mem0"},
                   "metadata": {"type": "object"},
                   "categories": {"type": "array", "items": {"type": "string"},
                                  "description": "metadata.categories, when the extractor filed the memory"},
                   "created_at": {"type": "string", "format": "date-time"},
                   "updated_at": {"type": "string", "format": "date-time"},
                   "expiration_date": {"type": "string", "format": "date"},
                   "immutable": {"const": True, "description": "present (true) for an immutable memory"},
                   "valid_from": {"type": "string", "format": "date-time",
                                  "description": "when the fact became true: the add's timestamp, else created_at"},
                   "invalid_at": {"type": "string", "format": "date-time",
                                  "description": "when the fact stopped being true; present once contradicted"},
                   "superseded_by": {"type": "string",
                                     "description": "the id of the memory that replaced it; present once superseded"},
                   "structured_attributes": ref("StructuredAttributes"),
                   "entities": {"type": "object",
                                "description": "the entities and relations the LLM named in this memory "
                                               "(--entities llm); absent when the offline recogniser reads them",
                                "properties": {
                                    "entities": {"type": "array", "items": {
                                        "type": "object", "required": ["name", "type"],
                                        "properties": {"name": {"type": "string"},
                                                       "type": {"enum": ["person", "organization", "place", "date",
                                                                         "handle", "title", "name"]}}}},
                                    "relations": {"type": "array", "items": {
                                        "type": "object", "required": ["source", "relationship", "target"],
                                        "properties": {"source": {"type": "string"},
                                                       "relationship": {"type": "string"},
                                                       "target": {"type": "string"}}}}}},
                   **SCOPE_FIELDS,
                   "actor_id": {"type": "string"},
                   "role": {"type": "string"}}},
    "StructuredAttributes": {
        "type": "object", "required": list(STRUCTURED_ATTRIBUTES),
        "description": "Mem0's calendar breakdown of valid_from in UTC, derived (ignored when sent); filterable as "
                       "structured_attributes.<name>",
        "properties": STRUCTURED_ATTRIBUTES},
    "ScoreDetails": {"type": "object", "description": "each ranking term, with explain", "properties": {
        k: {"type": "number"} for k in ["semantic", "keyword", "recency", "importance", "access", "entity", "final", "cosine",
                                        "bm25"]}},
    "SearchHit": {"allOf": [ref("Memory"), {"type": "object", "required": ["score"], "properties": {
        "score": {"type": "number"}, "score_details": ref("ScoreDetails")}}]},
    "PartialHit": {"type": "object", "required": ["id"], "description": "a hit reduced to the requested fields",
                   "properties": {"id": {"type": "string"}}},
    "MemoryEvent": {"type": "object", "required": ["id", "memory", "event"], "properties": {
        "id": {"type": "string"}, "memory": {"type": "string"},
        "event": {"enum": ["ADD", "UPDATE", "DELETE", "NONE"]},
        "previous_memory": {"type": "string"}}},
    "HistoryEvent": {"type": "object", "required": ["id", "memory_id", "event", "created_at"], "properties": {
        "id": {"type": "string"}, "memory_id": {"type": "string"},
        "old_memory": {"type": ["string", "null"]}, "new_memory": {"type": ["string", "null"]},
        "event": {"enum": ["ADD", "UPDATE", "DELETE", "NONE"]},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": ["string", "null"], "format": "date-time"},
        "is_deleted": {"type": "boolean"}, "actor_id": {"type": ["string", "null"]},
        "role": {"type": ["string", "null"]}}},
    "AddRequest": {"type": "object", "description": "at least one scope id; messages (or text) required", "properties": {
        "messages": {"oneOf": [{"type": "string"}, {"type": "array", "minItems": 1, "items": ref("Message")}]},
        "text": {"type": "string", "description": "one user message, when messages is absent"},
        **SCOPE_FIELDS,
        "metadata": {"type": ["object", "null"]},
        "infer": {"type": "boolean", "description": "extract facts with the configured extractor (default true)"},
        "expiration_date": {"type": "string", "description": "YYYY-MM-DD: hidden from search and listings after it"},
        "timestamp": {"oneOf": [{"type": "number"}, {"type": "string"}],
                      "description": "when the conversation happened (Unix seconds or ISO-8601): created_at"},
        "includes": dict(STRING_OR_LIST, description="kinds of information to remember only (LLM extractor)"),
        "excludes": dict(STRING_OR_LIST, description="kinds of information never to remember (LLM extractor)"),
        "custom_categories": {"type": "array", "items": {"oneOf": [{"type": "string"}, {"type": "object"}]},
                              "description": "[{\"name\": \"description\"}] categories for this add"},
        "custom_instructions": {"type": "string"},
        "agent_custom_instructions": {"type": "string", "description": "used when the add names an agent_id"},
        "prompt": {"type": "string", "description": "replaces the extraction prompt for this add"},
        "memory_type": {"enum": ["procedural_memory", None],
                        "description": "summarise an agent's run into one memory (needs agent_id)"},
        "async_mode": {"type": ["boolean", "null"],
                       "description": "true: queue the add (answered PENDING with an event_id; Platform routes only, "
                                      "refused on POST /memories); false: answer once stored; absent: the server's "
                                      "--async-adds (default sync)"},
        "enable_graph": {"type": ["boolean", "null"], "description": "accepted; " + GRAPH_NEEDS},
        "immutable": {"type": ["boolean", "null"],
                      "description": "never change or delete these memories by reconciliation; updates are refused"},
        **OUTPUT_FIELDS}},
    "AddResponse": {"oneOf": [
        {"type": "object", "required": ["results"],
         "properties": {"results": {"type": "array", "items": ref("MemoryEvent")}}},
        {"type": "array", "items": ref("MemoryEvent"), "description": "output_format v1.0"}]},
    "AddQueued": {"type": "object", "required": ["message", "status", "event_id"],
                  "description": "an add queued (async_mode): follow it at GET /v1/event/{event_id}/",
                  "properties": {"message": {"type": "string"}, "status": {"const": "PENDING"},
                                 "event_id": {"type": "string", "description": "the event's id"}}},
    "PlatformAddResponse": {"oneOf": [
        {"type": "object", "required": ["results"],
         "properties": {"results": {"type": "array", "items": {"anyOf": [ref("MemoryEvent"), ref("AddQueued")]}}}},
        {"type": "array", "items": {"anyOf": [ref("MemoryEvent"), ref("AddQueued")]}, "description": "output_format v1.0"},
        dict(ref("AddQueued"), description="a queued add on POST /v3/memories/add/")]},
    "EventResult": {"allOf": [ref("MemoryEvent"), {"type": "object", "required": ["data"], "properties": {
        "data": {"type": "object", "required": ["memory"], "properties": {"memory": {"type": "string"}}},
        **SCOPE_FIELDS}}]},
    "Event": {"type": "object",
              "required": ["id", "event_type", "status", "payload", "results", "created_at", "updated_at"],
              "properties": {
                  "id": {"type": "string", "description": "the event_id an add was answered with"},
                  "event_type": {"const": "ADD"},
                  "status": {"enum": ["PENDING", "RUNNING", "SUCCEEDED", "FAILED"]},
                  "payload": {"type": "object", "description": "the add's request body"},
                  "metadata": {"type": "null"},
                  "results": {"type": "array", "items": ref("EventResult"),
                              "description": "SUCCEEDED: the memories the add added, updated or deleted"},
                  "created_at": {"type": "string", "format": "date-time", "description": "when the add was accepted"},
                  "updated_at": {"type": "string", "format": "date-time"},
                  "started_at": {"type": ["string", "null"], "format": "date-time",
                                 "description": "when its first attempt started"},
                  "completed_at": {"type": ["string", "null"], "format": "date-time"},
                  "latency": {"type": ["number", "null"], "description": "completed_at - started_at, milliseconds"},
                  "error": {"type": ["string", "null"], "description": "FAILED: the last attempt's error"},
                  "attempts": {"type": "integer", "description": "attempts made"},
                  **SCOPE_FIELDS}},
    "EventPage": {"type": "object", "required": ["count", "next", "previous", "results"], "properties": {
        "count": {"type": "integer", "description": "events the key may see"},
        "next": {"type": ["string", "null"], "description": "this route with the next page, or null"},
        "previous": {"type": ["string", "null"], "description": "this route with the previous page, or null"},
        "results": {"type": "array", "items": ref("Event"), "description": "newest first"}}},
    "SearchRequest": {"type": "object", "required": ["query"], "properties": {
        "query": {"type": "string", "minLength": 1},
        **SCOPE_FIELDS,
        **LISTING_FIELDS,
        "metadata": {"type": "object", "description": "each key must equal (ANDed to the filters)"},
        "top_k": {"type": "integer", "minimum": 0}, "limit": {"type": "integer", "minimum": 0},
        "threshold": {"type": "number", "description": "minimum semantic score"},
        "mode": {"enum": ["semantic", "keyword", "hybrid"]},
        "keyword_search": {"type": "boolean", "description": "true asks for hybrid ranking"},
        "weights": RANKING_WEIGHTS,
        "rerank": {"type": "boolean", "description": "accepted; no reranker is configured"},
        "explain": {"type": "boolean", "description": "add score_details to each hit"},
        "fields": dict(STRING_OR_LIST, description="reduce each hit to these fields and its id"),
        **OUTPUT_FIELDS}},
    "SearchResponse": {"oneOf": [
        {"type": "object", "required": ["results"], "properties": {
            "results": {"type": "array", "items": {"anyOf": [ref("SearchHit"), ref("PartialHit")]}},
            "relations": {"type": "array", "items": ref("QueryRelation"), "description": "with enable_graph"}}},
        {"type": "array", "items": {"anyOf": [ref("SearchHit"), ref("PartialHit")]},
         "description": "output_format v1.0"}]},
    "ListResponse": {"oneOf": [
        {"type": "object", "required": ["results"],
         "properties": {"results": {"type": "array", "items": ref("Memory")},
                        "relations": {"type": "array", "items": ref("ScopeRelation"), "description": "with enable_graph"}}},
        {"type": "array", "items": ref("Memory"), "description": "output_format v1.0"}]},
    "PageRequest": {"type": "object", "properties": {
        **SCOPE_FIELDS, **LISTING_FIELDS,
        "page": {"type": "integer", "minimum": 1}, "page_size": {"type": "integer", "minimum": 1},
        "top_k": {"type": "integer", "minimum": 0}, "limit": {"type": "integer", "minimum": 0},
        **OUTPUT_FIELDS}},
    "PageResponse": {"oneOf": [
        {"type": "object", "required": ["count", "page", "page_size", "results"], "properties": {
            "count": {"type": "integer"}, "page": {"type": "integer"}, "page_size": {"type": "integer"},
            "results": {"type": "array", "items": ref("Memory")},
            "relations": {"type": "array", "items": ref("ScopeRelation"), "description": "with enable_graph"}}},
        {"type": "array", "items": ref("Memory"), "description": "output_format v1.0: the page's memories"}]},
    "UpdateRequest": {"type": "object", "description": "any of text, metadata, expiration_date, timestamp",
                      "properties": {
                          "text": {"type": "string"}, "data": {"type": "string"}, "memory": {"type": "string"},
                          "metadata": {"type": "object", "description": "merged; a null value removes the key"},
                          "expiration_date": {"type": ["string", "null"], "description": "null or \"\" clears it"},
                          "timestamp": {"oneOf": [{"type": "number"}, {"type": "string"}],
                                        "description": "when the change happened: updated_at"},
                          "immutable": {"enum": [False, None]}}},
    "Deleted": {"type": "object", "required": ["message"], "properties": {
        "message": {"type": "string"}, "deleted": {"type": "integer"}}},
    "BatchUpdateRequest": {"type": "object", "required": ["memories"], "properties": {"memories": {
        "type": "array", "minItems": 1, "maxItems": 1000, "items": {
            "type": "object", "required": ["memory_id"],
            "description": "a new text, a metadata patch, or both",
            "properties": {"memory_id": {"type": "string"},
                           "text": {"type": "string", "minLength": 1, "description": "the memory's new text"},
                           "metadata": {"type": "object", "description": "merged; a null value removes the key"}}}}}},
    "BatchDeleteRequest": {"type": "object", "required": ["memories"], "properties": {"memories": {
        "type": "array", "minItems": 1, "maxItems": 1000, "items": {
            "type": "object", "required": ["memory_id"], "properties": {"memory_id": {"type": "string"}}}}}},
    "BatchDone": {"type": "object", "required": ["message"], "properties": {
        "message": {"type": "string", "description": "\"Successfully updated N memories\" (or deleted)"}}},
    **WEBHOOK_SCHEMAS,
    "Entities": {"type": "object", "required": ["results"], "properties": {"results": {"type": "array", "items": {
        "type": "object", "required": ["type", "id", "name", "total_memories"], "properties": {
            "type": {"enum": ["user", "agent", "run"]}, "id": {"type": "string"}, "name": {"type": "string"},
            "total_memories": {"type": "integer"}}}}}},
    "QueryRelation": {"type": "object", "required": ["source", "relationship", "destination"],
                      "description": "a relation of an entity the query names (Mem0's search shape)", "properties": {
                          "source": {"type": "string"}, "relationship": {"type": "string"},
                          "destination": {"type": "string"}}},
    "ScopeRelation": {"type": "object", "required": ["source", "relationship", "target"],
                      "description": "a relation of the scope (Mem0's listing shape)", "properties": {
                          "source": {"type": "string"}, "relationship": {"type": "string"},
                          "target": {"type": "string"}}},
    "GraphEntity": {"type": "object", "required": ["name", "type", "aliases", "memories", "merges"], "properties": {
        "name": {"type": "string", "description": "as first written"},
        "type": {"enum": ["person", "organization", "place", "date", "handle", "title", "name"]},
        "aliases": {"type": "array", "items": {"type": "string"}, "description": "other names it was written as"},
        "memories": {"type": "integer", "description": "how many memories mention it"},
        "merges": {"type": "array", "description": "how it got its other names, in order: deleting memory_id undoes "
                                                  "that merge",
                   "items": {"type": "object", "required": ["name", "memory_id", "by"], "properties": {
                       "name": {"type": "string"}, "memory_id": {"type": "string"},
                       "by": {"enum": ["spelling", "word", "similarity"]}}}}}},
    "GraphRelation": {"type": "object", "required": ["source", "relationship", "target", "memories"], "properties": {
        "source": {"type": "string"}, "relationship": {"type": "string"}, "target": {"type": "string"},
        "memories": {"type": "integer", "description": "how many memories state it"}}},
    "Graph": {"type": "object", "required": ["entities", "relations"], "properties": {
        "entities": {"type": "array", "items": ref("GraphEntity"), "description": "most mentioned first"},
        "relations": {"type": "array", "items": ref("GraphRelation")}}},
    "GraphEntityDetail": {"allOf": [ref("GraphEntity"), {"type": "object", "required": ["relations", "results"],
                                                         "properties": {
        "relations": {"type": "array", "items": ref("GraphRelation"), "description": "the relations it is in"},
        "results": {"type": "array", "description": "the memories mentioning it", "items": {
            "type": "object", "required": ["id", "memory"],
            "properties": {"id": {"type": "string"}, "memory": {"type": "string"}}}}}}]},
    "ExportRequest": {"type": "object", "description": EXPORT_FIELDS_NOTE, "properties": {
        "schema": {"oneOf": [{"type": "object"}, {"type": "string"}, {"type": "null"}],
                   "description": "a JSON schema (an object, or a JSON string of one): kept and returned with the "
                                  "export; engram does not fill it with a model (the memories are the export's data)"},
        "filters": {"type": ["object", "null"], "description": "which memories: " + FILTERS["description"]},
        "export_instructions": {"type": ["string", "null"],
                                "description": "kept and returned with the export; not applied (no model fills the "
                                               "schema)"},
        **SCOPE_FIELDS}},
    "ExportCreated": {"type": "object", "required": ["message", "id"], "properties": {
        "message": {"type": "string"},
        "id": {"type": "string", "format": "uuid", "description": "the export's id: its memory_export_id"}}},
    "ExportGetRequest": {"type": "object", "description": "memory_export_id, filters or a scope id (at least one). "
                                                          + EXPORT_FIELDS_NOTE, "properties": {
        "memory_export_id": {"type": "string", "description": "the id the create answered"},
        "filters": {"type": ["object", "null"],
                    "description": "the newest export whose scope ids and creation time (created_at, updated_at) "
                                   "they match, in the filter grammar"},
        **SCOPE_FIELDS}},
    "Export": {"type": "object",
               "required": ["id", "created_at", "filters", "schema", "export_instructions", "count", "memories"],
               "description": "a snapshot of the memories selected when the export was created (current versions, "
                              "expired ones included); `engram import --from mem0` reads it", "properties": {
        "id": {"type": ["string", "null"], "description": "null in the CLI's `engram export --format mem0`"},
        "created_at": {"type": "string", "format": "date-time"},
        **SCOPE_FIELDS,
        "filters": {"type": ["object", "null"], "description": "the request's filters, as given"},
        "schema": {"type": ["object", "null"], "description": "the request's schema, as an object"},
        "export_instructions": {"type": ["string", "null"]},
        "count": {"type": "integer", "minimum": 0},
        "memories": {"type": "array", "items": ref("Memory"), "description": "oldest first"}}},
    "SummaryRequest": {"type": "object", "description": EXPORT_FIELDS_NOTE, "properties": {
        "filters": {"type": ["object", "null"], "description": "which memories, as an export selects them"},
        **SCOPE_FIELDS}},
    "Summary": {"type": "array", "description": "one item per scope, in order; counted, not written by a model",
                "items": {"type": "object",
                          "required": ["total_memories", "categories", "first_created_at", "last_updated_at"],
                          "properties": {
                              **SCOPE_FIELDS,
                              "total_memories": {"type": "integer"},
                              "categories": {"type": "object", "additionalProperties": {"type": "integer"},
                                             "description": "memories per category"},
                              "first_created_at": {"type": "string", "format": "date-time"},
                              "last_updated_at": {"type": "string", "format": "date-time"}}}},
    "Purged": {"type": "object", "required": ["message", "deleted", "events", "deliveries", "exports"], "properties": {
        "message": {"type": "string"}, "deleted": {"type": "integer", "description": "memories erased"},
        "events": {"type": "integer", "description": "async add events dropped"},
        "deliveries": {"type": "integer", "description": "pending webhook deliveries dropped"},
        "exports": {"type": "integer", "description": "exports removed or rewritten without the scope"}}},
    "Ping": {"type": "object", "required": ["status"], "properties": {
        "status": {"type": "string"}, "org_id": {"type": "string"}, "project_id": {"type": "string"},
        "user_email": {"type": "string", "description": "the API key's name"}}},
    "Health": {"type": "object", "required": ["status"], "properties": {
        "status": {"enum": ["ok", "unavailable"]}, "memories": {"type": "integer", "description": "admins only"},
        "detail": {"type": "string"}}},
    "JsonRpc": {"oneOf": [{"type": "object"}, {"type": "array", "items": {"type": "object"}}],
                "description": "a JSON-RPC 2.0 message or batch (Model Context Protocol)"},
}

ERRORS = {
    "400": "malformed request: the detail names the field",
    "401": "no API key, or an unknown one",
    "403": "another user's scope for a bound key, or an admin route",
    "404": "no such memory, event or export (or route)",
    "413": "body over --max-body (or a batch over 1,000 memories, or an export over --max-export-memories)",
    "429": "rate limit exceeded (Retry-After)",
    "502": "the embedding or LLM provider failed",
    "503": "the store is unavailable (Retry-After)",
}
RESPONSES = {code: {"description": why, "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}},
                    "content": {"application/json": {"schema": ref("Error")}}} for code, why in ERRORS.items()}


def ok(schema, description="OK"):
    return {"description": description, "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}},
            "content": {"application/json": {"schema": schema}}}


def errors(*codes):
    return {c: {"$ref": "#/components/responses/E" + c} for c in codes}


def body(schema):
    return {"required": True, "content": {"application/json": {"schema": schema}}}


def query(name, schema, description=""):
    p = {"name": name, "in": "query", "required": False, "schema": schema}
    if description:
        p["description"] = description
    return p


ID = {"name": "memory_id", "in": "path", "required": True, "schema": {"type": "string"}}
EVENT_ID = {"name": "event_id", "in": "path", "required": True, "schema": {"type": "string"}}
SCOPE_QUERY = [query(k, v, v["description"]) for k, v in SCOPE_FIELDS.items()]
LIST_QUERY = SCOPE_QUERY + [
    query("top_k", {"type": "integer", "minimum": 0}, "at most this many (default 100; 0: all)"),
    query("limit", {"type": "integer", "minimum": 0}),
    query("filters", {"type": "string"}, "a filter tree as JSON text"),
    query("categories", {"type": "string"}, "comma-separated categories (any of them)"),
    query("start_date", {"type": "string"}), query("end_date", {"type": "string"}),
    query("show_expired", {"type": "boolean"}), query("latest_only", {"type": "boolean"}),
    query("as_of", {"type": "string"}, "Unix seconds or ISO-8601 (a '+' of an offset sent as %2B): the memories "
                                       "that held then"),
    query("include_invalid", {"type": "boolean"}, "every version, closed ones too"),
    query("output_format", {"enum": ["v1.0", "v1.1"]}),
    query("enable_graph", {"type": "boolean"}, "add the scope's `relations`; " + GRAPH_NEEDS),
]
ENTITY_QUERY = SCOPE_QUERY + [
    dict(query("name", {"type": "string", "minLength": 1}, "the entity's name or one of its aliases (case ignored)"),
         required=True)]
COMMON = ("400", "401", "403", "413", "429", "503")
PROJECT_ID = {"name": "project_id", "in": "path", "required": True, "schema": {"type": "string"},
              "description": "kept with the webhook and echoed as `project`"}
WEBHOOK_ID = {"name": "webhook_id", "in": "path", "required": True, "schema": {"type": "string"}}
ENTITY_TYPE = {"name": "entity_type", "in": "path", "required": True,
               "schema": {"enum": ["user", "agent", "run", "app"]},
               "description": "the kind of id (an app within the key's project)"}
PURGE_DESC = ("Erasure: every memory of the entity's scope (every version) and its history, for good: when it "
              "returns no file of the data directory and no database row holds their text. Queued adds are "
              "processed first; the server's events journal, pending webhook deliveries and exports drop what they "
              "hold of the scope. A bound key acts within its user (another user's id: 403). Idempotent: an entity "
              "holding nothing answers zeros.")
WEBHOOK_DESC = ("Admin keys only (a user-bound key gets 403): a webhook is told of every user's memories. On a "
                "server without --keys anyone may manage them.")


def entity_purge(op_id, version, id_name):
    """The entity-delete route (deleteUser: v1 and entity_id; deleteUsers: v2 and entity_name)."""
    return {"delete": op(op_id, "Erase an entity: its memories and their history (Mem0 Platform%s)" % version,
                         ["platform"], {"200": ok(ref("Purged")), **errors("400", "401", "403", "429", "503")},
                         params=[ENTITY_TYPE, {"name": id_name, "in": "path", "required": True, "schema": {"type": "string"}}],
                         description=PURGE_DESC)}


def op(op_id, summary, tags, responses, request=None, params=None, description=None, security=True):
    o = {"operationId": op_id, "summary": summary, "tags": tags, "responses": responses}
    if description:
        o["description"] = description
    if request:
        o["requestBody"] = request
    if params:
        o["parameters"] = params
    if not security:
        o["security"] = [{}]
    return o


def memory_routes(oss, prefix, tag, suffix):
    """The routes of one family: OSS (`/memories/{id}`) or Platform (`/v1/memories/{id}/`)."""
    s = suffix
    id_path = prefix + "/{memory_id}" + s
    history = prefix + "/{memory_id}/history" + s
    n = "" if oss else "V1"
    return {
        id_path: {
            "get": op("getMemory" + n, "One memory", [tag], {"200": ok(ref("Memory")), **errors("401", "404", "429", "503")},
                      params=[ID]),
            "put": op("updateMemory" + n, "Update a memory's text, metadata, expiration or time", [tag],
                      {"200": ok(ref("Memory")), **errors(*COMMON, "404", "502")}, body(ref("UpdateRequest")), [ID]),
            "delete": op("deleteMemory" + n, "Delete a memory (its history stays)", [tag],
                         {"200": ok(ref("Deleted")), **errors("401", "404", "429", "503")}, params=[ID]),
        },
        history: {"get": op("memoryHistory" + n, "A memory's events, oldest first", [tag],
                            {"200": ok({"type": "array", "items": ref("HistoryEvent")}),
                             **errors("401", "404", "429", "503")}, params=[ID])},
    }


BATCH_DESC = ("Every item is checked before anything changes: its memory_id, that the memory exists and the key may "
              "see it (another user's id answers 404 for a bound key), for an update that it is not immutable and "
              "has a non-blank text or a metadata patch, and that no id is given twice. Then all items are applied "
              "in one write batch: after an error nothing has changed. Errors name the item (memories[i]).")


ORG_ID = {"name": "org_id", "in": "path", "required": True, "schema": {"type": "string"}}
PROJECT = {"name": "project_id", "in": "path", "required": True, "schema": {"type": "string"}}
PROJECT_SCHEMA = {"type": "object", "properties": {
    "id": {"type": "string"}, "project_id": {"type": "string"}, "name": {"type": "string"},
    "description": {"type": ["string", "null"]}, "org_id": {"type": "string"},
    "custom_instructions": {"type": ["string", "null"], "description": "the default of the project's adds"},
    "agent_custom_instructions": {"type": ["string", "null"],
                                  "description": "the default of the project's adds that name an agent"},
    "custom_categories": {"type": "array", "items": {"type": "object", "additionalProperties": {"type": "string"}},
                          "description": "[{\"name\": \"description\"}]: the default of the project's adds"}}}
PROJECTS_DESC = ("The projects are those the key file binds keys to (org=ORG project=PROJECT), those a server-wide "
                 "admin created, and the default project engram/engram; a key sees its own project only, a "
                 "server-wide admin every one.")
REFUSED_DESC = ("Refused (403): organizations and members are made, and projects deleted, by editing the key file "
                "(docs/server.md#organizations-and-projects).")


def org_routes():
    def refused(op_id, summary, params):
        return op(op_id, summary, ["projects"], {**errors("401", "403", "429")}, params=params,
                  description=REFUSED_DESC)
    members = ok({"type": "object", "properties": {"members": {"type": "array", "items": {"type": "object", "properties": {
        "username": {"type": "string"}, "role": {"enum": ["OWNER", "MEMBER"]}, "user_id": {"type": "string"}}}}}})
    base = "/api/v1/orgs/organizations/"
    return {
        base: {"get": op("getOrganizations", "The organizations the key may see", ["projects"],
                         {"200": ok({"type": "array", "items": {"type": "object", "properties": {
                             "org_id": {"type": "string"}, "name": {"type": "string"}}}}), **errors("401", "429")},
                         description=PROJECTS_DESC),
               "post": refused("createOrganization", "Create an organization (refused)", None)},
        base + "{org_id}/": {
            "get": op("getOrganization", "One organization", ["projects"],
                      {"200": ok({"type": "object"}), **errors("401", "404", "429")}, params=[ORG_ID]),
            "delete": refused("deleteOrganization", "Delete an organization (refused)", [ORG_ID])},
        base + "{org_id}/members/": {
            "get": op("getOrganizationMembers", "The keys bound to the organization (names and roles)", ["projects"],
                      {"200": members, **errors("401", "404", "429")}, params=[ORG_ID]),
            "post": refused("addOrganizationMember", "Add a member (refused)", [ORG_ID])},
        base + "{org_id}/projects/": {
            "get": op("getProjects", "The organization's projects the key may see", ["projects"],
                      {"200": ok({"type": "array", "items": PROJECT_SCHEMA}), **errors("401", "404", "429")},
                      params=[ORG_ID], description=PROJECTS_DESC),
            "post": op("createProject", "Create a project (the Python SDK's project.create)", ["projects"],
                       {"200": ok({"type": "object", "required": ["message", "project_id"], "properties": {
                           "message": {"type": "string"}, "project_id": {"type": "string", "format": "uuid"}}}),
                        **errors("400", "401", "403", "404", "413", "429", "503")},
                       body({"type": "object", "required": ["name"], "additionalProperties": False, "properties": {
                           "name": {"type": "string", "minLength": 1, "maxLength": 1000},
                           "description": {"type": ["string", "null"], "maxLength": 1000}}}),
                       [ORG_ID],
                       description="A server-wide admin key only, in an organization the server knows; the "
                                   "project gets a new uuid as its id, which a key file line may then bind keys "
                                   "to. A name already used in the organization, or a field other than name and "
                                   "description, is a 400. Refused (403) when the server keeps projects in memory "
                                   "only (PostgreSQL without --projects-file).")},
        base + "{org_id}/projects/{project_id}/": {
            "get": op("getProject", "One project's settings (the SDK's getProject)", ["projects"],
                      {"200": ok(PROJECT_SCHEMA), **errors("400", "401", "404", "429")},
                      params=[ORG_ID, PROJECT, query("fields", {"type": "string"}, "only these fields (repeatable)")]),
            "patch": op("updateProject", "Change a project's settings (the SDK's updateProject)", ["projects"],
                        {"200": ok({"type": "object", "properties": {"message": {"type": "string"},
                                                                    "project": PROJECT_SCHEMA}}),
                         **errors("400", "401", "403", "404", "413", "429", "503")},
                        body({"type": "object", "properties": {
                            k: v for k, v in PROJECT_SCHEMA["properties"].items()
                            if k in ("custom_instructions", "agent_custom_instructions", "custom_categories")}}),
                        [ORG_ID, PROJECT],
                        description="An admin key of the project, or a server-wide one. Other Platform settings "
                                    "(memory_depth, usecase_setting, multilingual, ...) are a 400 naming them when "
                                    "they ask for something."),
            "delete": refused("deleteProject", "Delete a project (refused)", [ORG_ID, PROJECT])},
        base + "{org_id}/projects/{project_id}/members/": {
            "get": op("getProjectMembers", "The keys bound to the project (names and roles)", ["projects"],
                      {"200": members, **errors("401", "404", "429")}, params=[ORG_ID, PROJECT]),
            "post": refused("addProjectMember", "Add a member (refused)", [ORG_ID, PROJECT])},
    }


def document():
    add_desc = ("Remembers messages for a scope. With infer (default) the configured extractor turns them into "
                "facts and reconciles them with what the scope holds; without it the text is stored as given.")
    queued_desc = (" With async_mode true (or, when the request has none, the server's --async-adds async, except "
                   "for infer false) the add is checked, queued durably and answered at once PENDING with an "
                   "event_id: GET /v1/event/{event_id}/ follows it.")
    paths = {
        "/memories": {
            "post": op("addMemories", "Add memories (Mem0 OSS)", ["memories"],
                       {"200": ok(ref("AddResponse")), **errors(*COMMON, "502")}, body(ref("AddRequest")),
                       description=add_desc),
            "get": op("listMemories", "List a scope's memories (Mem0 OSS)", ["memories"],
                      {"200": ok(ref("ListResponse")), **errors(*COMMON)}, params=LIST_QUERY,
                      description="Admins may name no scope to list every memory."),
            "delete": op("deleteAllMemories", "Delete every memory of a scope (Mem0 OSS)", ["memories"],
                         {"200": ok(ref("Deleted")), **errors(*COMMON)}, params=SCOPE_QUERY),
        },
        "/search": {"post": op("searchMemories", "Search a scope (Mem0 OSS)", ["memories"],
                               {"200": ok(ref("SearchResponse")), **errors(*COMMON, "502")}, body(ref("SearchRequest")))},
        "/reset": {"post": op("reset", "Delete every memory of every scope (admin)", ["memories"],
                              {"200": ok(ref("Deleted")), **errors("401", "403", "429", "503")})},
        "/v1/ping/": {"get": op("ping", "Check the key (Mem0 Platform)", ["platform"],
                                {"200": ok(ref("Ping")), **errors("401", "429")})},
        "/v1/memories/": {
            "post": op("addMemoriesV1", "Add memories (Mem0 Platform)", ["platform"],
                       {"200": ok(ref("PlatformAddResponse")), **errors(*COMMON, "502")}, body(ref("AddRequest")),
                       description=add_desc + queued_desc),
            "delete": op("deleteAllMemoriesV1", "Delete every memory of a scope (Mem0 Platform)", ["platform"],
                         {"200": ok(ref("Deleted")), **errors(*COMMON)}, params=SCOPE_QUERY),
        },
        "/v3/memories/add/": {"post": op("addMemoriesV3", "Add memories (Mem0 Platform v3)", ["platform"],
                                         {"200": ok(ref("PlatformAddResponse")), **errors(*COMMON, "502")},
                                         body(ref("AddRequest")), description=add_desc + queued_desc)},
        "/v1/event/{event_id}/": {"get": op("getEvent", "A queued add's event (Mem0 Platform)", ["platform"],
                                            {"200": ok(ref("Event")), **errors("400", "401", "404", "429")},
                                            params=[EVENT_ID],
                                            description="PENDING, RUNNING, then SUCCEEDED with the memories the add "
                                                        "made, or FAILED with the error. A key bound to a user sees "
                                                        "that user's events only (another's id answers 404).")},
        "/v1/events/": {"get": op("listEvents", "Queued adds' events, newest first (Mem0 Platform)", ["platform"],
                                  {"200": ok(ref("EventPage")), **errors("400", "401", "429")},
                                  params=[query("page", {"type": "integer", "minimum": 1}, "from 1 (default 1)"),
                                          query("page_size", {"type": "integer", "minimum": 1, "maximum": 1000},
                                                "default 100")],
                                  description="The events the key may see (a bound key: its user's). At most "
                                              "--max-events are kept, the oldest finished ones dropped first.")},
        "/v2/memories/search/": {"post": op("searchMemoriesV2", "Search (Mem0 Platform v2)", ["platform"],
                                            {"200": ok(ref("SearchResponse")), **errors(*COMMON, "502")},
                                            body(ref("SearchRequest")))},
        "/v3/memories/search/": {"post": op("searchMemoriesV3", "Search (Mem0 Platform v3)", ["platform"],
                                            {"200": ok(ref("SearchResponse")), **errors(*COMMON, "502")},
                                            body(ref("SearchRequest")))},
        "/v1/batch/": {
            "put": op("batchUpdate", "Update up to 1,000 memories, all or nothing (Mem0 Platform)", ["platform"],
                      {"200": ok(ref("BatchDone")), **errors(*COMMON, "404", "502")}, body(ref("BatchUpdateRequest")),
                      description=BATCH_DESC),
            "delete": op("batchDelete", "Delete up to 1,000 memories, all or nothing (Mem0 Platform)", ["platform"],
                         {"200": ok(ref("BatchDone")), **errors(*COMMON, "404")}, body(ref("BatchDeleteRequest")),
                         description=BATCH_DESC),
        },
        "/v1/entities/": {"get": op("listEntities", "The users, agents and runs holding memories", ["platform"],
                                    {"200": ok(ref("Entities")), **errors("401", "429", "503")},
                                    description="Admins see every scope; a bound key its own user.")},
        "/v1/entities/{entity_type}/{entity_id}/": entity_purge("deleteEntityV1", "", "entity_id"),
        "/v2/entities/{entity_type}/{entity_name}/": entity_purge("deleteEntityV2", " v2", "entity_name"),
        "/v1/graph/": {"get": op("getGraph", "The entities and relations a scope's memories name", ["graph"],
                                 {"200": ok(ref("Graph")), **errors("400", "401", "403", "429", "503")},
                                 params=SCOPE_QUERY,
                                 description="A scope is required (a bound key's is its user). " + GRAPH_NEEDS + ".")},
        "/v1/graph/entity/": {
            "get": op("getGraphEntity", "One entity: its relations and the memories mentioning it", ["graph"],
                      {"200": ok(ref("GraphEntityDetail")), **errors("400", "401", "403", "404", "429", "503")},
                      params=ENTITY_QUERY, description="404 when the scope names no such entity. " + GRAPH_NEEDS + "."),
            "delete": op("deleteGraphEntity", "Delete every memory of the scope mentioning an entity", ["graph"],
                         {"200": ok(ref("Deleted")), **errors("400", "401", "403", "404", "429", "503")},
                         params=ENTITY_QUERY,
                         description="The entity and its relations go with the memories that name them (they are "
                                     "derived from the memories' texts); other scopes are untouched. Answers the "
                                     "count deleted. " + GRAPH_NEEDS + "."),
        },
        **org_routes(),
        "/api/v1/webhooks/projects/{project_id}/": {
            "get": op("getWebhooks", "The webhooks created under a project (Mem0 Platform)", ["webhooks"],
                      {"200": ok({"type": "array", "items": ref("Webhook")}), **errors("401", "403", "429")},
                      params=[PROJECT_ID], description=WEBHOOK_DESC + " Secrets are not listed."),
            "post": op("createWebhook", "Create a webhook (Mem0 Platform)", ["webhooks"],
                       {"200": ok(ref("WebhookCreated")), **errors("400", "401", "403", "413", "429", "503")},
                       body(ref("WebhookRequest")), [PROJECT_ID],
                       description=WEBHOOK_DESC + " The answer holds the webhook's secret, the only one that does."),
        },
        "/api/v1/webhooks/{webhook_id}/": {
            "put": op("updateWebhook", "Change a webhook (Mem0 Platform)", ["webhooks"],
                      {"200": ok(ref("WebhookUpdated")), **errors("400", "401", "403", "404", "413", "429", "503")},
                      body(ref("WebhookUpdateRequest")), [WEBHOOK_ID],
                      description=WEBHOOK_DESC + " Pending deliveries go to the new URL, signed with the new secret."),
            "delete": op("deleteWebhook", "Delete a webhook and its pending deliveries (Mem0 Platform)", ["webhooks"],
                         {"200": ok(ref("Deleted")), **errors("401", "403", "404", "429", "503")}, params=[WEBHOOK_ID],
                         description=WEBHOOK_DESC),
        },
        "/v1/exports/": {"post": op(
            "createMemoryExport", "Export the memories a scope or filter selects (Mem0 Platform)", ["exports"],
            {"201": ok(ref("ExportCreated"), "the export is kept: fetch it with its id"),
             **errors("400", "401", "403", "413", "429", "503")}, body(ref("ExportRequest")),
            description="Snapshots the memories the scope ids and filters select, as the listings select them, "
                        "expired ones included (at most --max-export-memories, else 413), and keeps the export "
                        "(--exports-dir; the oldest dropped past --max-exports). Mem0 has a model fill the schema; "
                        "engram keeps and returns it with the memories themselves.")},
        "/v1/exports/get/": {"post": op(
            "getMemoryExport", "Fetch an export by id, or the newest one filters match (Mem0 Platform)", ["exports"],
            {"200": ok(ref("Export")), **errors("400", "401", "403", "404", "429", "503")},
            body(ref("ExportGetRequest")),
            description="A key bound to a user fetches its user's exports only: another's id answers 404.")},
        "/v1/summary/": {"post": op(
            "memorySummary", "Counts of the selected memories per scope (Mem0 Platform's get_summary)", ["exports"],
            {"200": ok(ref("Summary")), **errors("400", "401", "403", "429", "503")}, body(ref("SummaryRequest")),
            description="Per scope: how many memories, per category, the first created_at and the last "
                        "updated_at. No model writes prose.")},
        "/mcp": {
            "post": op("mcp", "Model Context Protocol over Streamable HTTP (JSON answers)", ["mcp"],
                       {"200": ok(ref("JsonRpc")),
                        "202": {"description": "notifications or responses only: no body",
                                "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}}},
                        **errors("400", "401", "413", "429")}, body(ref("JsonRpc"))),
            "get": op("mcpStream", "No server-initiated stream", ["mcp"],
                      {"405": {"description": "POST JSON-RPC messages instead",
                               "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}},
                               "content": {"application/json": {"schema": ref("Error")}}}}, security=False),
        },
        "/health": {"get": op("health", "Liveness; the memory count for admins", ["operations"],
                              {"200": ok(ref("Health")), "503": ok(ref("Health"), "the store is unreachable")},
                              security=False)},
        "/metrics": {"get": op("metrics", "Counts and latencies (admin): JSON, or Prometheus text", ["operations"], {
            "200": {"description": "engram's JSON, or the Prometheus text format 0.0.4 (?format=prometheus or a "
                                   "scraper's Accept header)",
                    "headers": {"X-Request-Id": {"$ref": "#/components/headers/X-Request-Id"}},
                    "content": {"application/json": {"schema": {"type": "object"}},
                                "text/plain": {"schema": {"type": "string"}}}},
            **errors("400", "401", "403", "429")},
            params=[query("format", {"enum": ["json", "prometheus"]})])},
        "/openapi.json": {"get": op("openapi", "This document", ["operations"],
                                    {"200": ok({"type": "object"})}, security=False)},
        "/ui": {"get": op("dashboardRedirect", "Redirects to /ui/", ["dashboard"],
                          {"302": {"description": "Location: /ui/"}}, security=False)},
    }
    for path, op_id, what, media in [("/ui/", "dashboard", "The dashboard's page", "text/html"),
                                     ("/ui/app.js", "dashboardScript", "The dashboard's script", "text/javascript"),
                                     ("/ui/style.css", "dashboardStyle", "The dashboard's style sheet", "text/css")]:
        paths[path] = {"get": op(op_id, what + " (static; it calls the routes above with the user's key)",
                                 ["dashboard"], {"200": {"description": "served with a Content-Security-Policy "
                                                                        "that allows the dashboard's own files only",
                                                         "content": {media: {"schema": {"type": "string"}}}}},
                                 security=False)}
    for path in ("/v2/memories/", "/v3/memories/"):
        paths[path] = {"post": op("listMemories" + path.split("/")[1].upper(), "List memories, paged (Mem0 Platform)",
                                  ["platform"], {"200": ok(ref("PageResponse")), **errors(*COMMON)},
                                  body(ref("PageRequest")),
                                  [query("page", {"type": "integer", "minimum": 1}),
                                   query("page_size", {"type": "integer", "minimum": 1})],
                                  description="page and page_size may come in the query string, as the SDKs send "
                                              "them; the body's win.")}
    paths.update(memory_routes(True, "/memories", "memories", ""))
    paths.update(memory_routes(False, "/v1/memories", "platform", "/"))
    return {
        "openapi": "3.1.0",
        "info": {"title": "engram-server", "version": version(),
                 "description": "engram's memory service: Mem0's REST API (the open-source server's routes and "
                                "the Platform's), MCP over HTTP, and operations routes. Every answer carries "
                                "X-Request-Id. A server started without --keys listens on loopback only and "
                                "needs no key.",
                 "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"}},
        "servers": [{"url": "http://127.0.0.1:8888"}],
        "security": [{"Token": []}, {"Bearer": []}],
        "tags": [{"name": n, "description": d} for n, d in [
            ("memories", "Mem0's open-source server routes"), ("platform", "Mem0 Platform routes"),
            ("graph", "the entity graph of a scope (--entities on)"),
            ("webhooks", "receivers of memory events (Mem0 Platform; admin keys)"),
            ("exports", "memory exports and their summary"),
            ("projects", "organizations and projects (Mem0 Platform; made by binding keys in the key file)"),
            ("mcp", "Model Context Protocol"), ("operations", "health, metrics, this description"),
            ("dashboard", "the memory dashboard at /ui/")]],
        "paths": dict(sorted(paths.items())),
        "webhooks": {"memoryEvent": {"post": {
            "operationId": "webhookDelivery", "summary": "What engram-server POSTs to a webhook's URL",
            "tags": ["webhooks"], "security": [{}],
            "description": "One event per request, retried (the same body and delivery id) with a doubling wait "
                           "until a 2xx answer: at least once, in order per webhook.",
            "parameters": [
                {"name": "X-Engram-Signature", "in": "header", "required": True, "schema": {"type": "string"},
                 "description": "sha256=HEX: the HMAC-SHA256 of the raw body under the webhook's secret"},
                {"name": "X-Engram-Event-Id", "in": "header", "required": True, "schema": {"type": "string"}},
                {"name": "X-Engram-Delivery-Id", "in": "header", "required": True, "schema": {"type": "string"}},
                {"name": "X-Engram-Event-Type", "in": "header", "required": True,
                 "schema": {"enum": WEBHOOK_TYPES}}],
            "requestBody": body(ref("WebhookDelivery")),
            "responses": {"2XX": {"description": "delivered; anything else is retried"}}}}},
        "components": {
            "securitySchemes": {
                "Token": {"type": "apiKey", "in": "header", "name": "Authorization",
                          "description": "`Authorization: Token KEY` (Mem0's form), a key from the --keys file"},
                "Bearer": {"type": "http", "scheme": "bearer", "description": "`Authorization: Bearer KEY`"}},
            "headers": {"X-Request-Id": {"description": "the request's id: the client's X-Request-Id when it is "
                                                        "1-128 characters of [A-Za-z0-9._:-], a fresh one otherwise",
                                         "schema": {"type": "string"}}},
            "responses": {"E" + c: r for c, r in RESPONSES.items()},
            "schemas": SCHEMAS,
        },
    }


def main():
    text = json.dumps(document(), indent=1, sort_keys=False) + "\n"
    if "--check" in sys.argv[1:]:
        with open(OUT) as f:
            if f.read() != text:
                print("docs/openapi.json is stale: run scripts/openapi.py", file=sys.stderr)
                sys.exit(1)
        print("docs/openapi.json is up to date")
        return
    with open(OUT, "w") as f:
        f.write(text)
    print("wrote " + os.path.relpath(OUT, ROOT))


if __name__ == "__main__":
    main()
