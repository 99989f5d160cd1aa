#pragma once
/// @file engram.hpp
/// The core of engram in one include: basic_memory, the default policies and engram::memory.
/// Needs only Eigen, xsimd and nlohmann_json. Optional parts (HTTP providers, SQLite) have their own headers.

#include <engram/capabilities.hpp>
#include <engram/concepts.hpp>
#include <engram/embed/any_embedder.hpp>
#include <engram/embed/hashing.hpp>
#include <engram/error.hpp>
#include <engram/extract/actions.hpp>
#include <engram/extract/any_extractor.hpp>
#include <engram/extract/verbatim.hpp>
#include <engram/filter/dsl.hpp>
#include <engram/filter/eval.hpp>
#include <engram/filter/expr.hpp>
#include <engram/filter/parse.hpp>
#include <engram/fwd.hpp>
#include <engram/ids.hpp>
#include <engram/index/bitmap.hpp>
#include <engram/index/flat.hpp>
#include <engram/index/ivf.hpp>
#include <engram/index/kmeans.hpp>
#include <engram/index/topk.hpp>
#include <engram/json.hpp>
#include <engram/json_dump.hpp>
#include <engram/json_records.hpp>
#include <engram/memory.hpp>
#include <engram/record.hpp>
#include <engram/scope.hpp>
#include <engram/scope_keys.hpp>
#include <engram/simd/kernels.hpp>
#include <engram/simd/scalar.hpp>
#include <engram/store/file_store.hpp>
#include <engram/store/memory_store.hpp>
#include <engram/temporal/validity.hpp>
#include <engram/time.hpp>
#include <engram/tools/jsonl.hpp>
#include <engram/tools/mem0_import.hpp>
#include <engram/tools/reembed.hpp>
#include <engram/uuid.hpp>
#include <engram/version.hpp>
#include <engram/write_batch.hpp>
