#pragma once
/// @file examples/common/errors.hpp
/// What went wrong, once for every app: engram's typed errors and the apps' own refusals sorted into one
/// error_kind, and what each kind becomes in engram-server (an HTTP status), the CLI (an exit code) and
/// engram-mcp (a tool error the model can read, or a JSON-RPC error).
/// The wording of messages stays with each app; the classification and the codes live here.

#include <engram/error.hpp>

#include <optional>
#include <stdexcept>
#include <string_view>

namespace engram_app {

/// Refusals that are not engram errors: the caller is not allowed (403) or not known (401), or the request asks
/// for more than one request may (413: a batch over its item limit).
struct forbidden : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct too_large : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct unauthorized : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// One kind per way the apps answer a failure.
enum class error_kind {
  invalid_input,  ///< engram::validation_error, engram::dimension_mismatch: the caller's input is wrong
  not_found,      ///< engram::not_found
  unauthorized,   ///< unauthorized: no or an unknown API key
  forbidden,      ///< forbidden: known caller, not allowed
  too_large,      ///< too_large: more items than one request may carry
  provider,       ///< engram::provider_error: an embedding or chat model failed
  storage,        ///< engram::storage_error: the store is unavailable (may pass: retry)
  internal,       ///< anything else
};

/// The kind of the exception being handled. Call it only inside a catch block (it rethrows to look).
inline error_kind current_error_kind() noexcept {
  try {
    throw;
  } catch (const engram::validation_error&) {
    return error_kind::invalid_input;
  } catch (const engram::dimension_mismatch&) {
    return error_kind::invalid_input;
  } catch (const engram::not_found&) {
    return error_kind::not_found;
  } catch (const unauthorized&) {
    return error_kind::unauthorized;
  } catch (const forbidden&) {
    return error_kind::forbidden;
  } catch (const too_large&) {
    return error_kind::too_large;
  } catch (const engram::provider_error&) {
    return error_kind::provider;
  } catch (const engram::storage_error&) {
    return error_kind::storage;
  } catch (...) {
    return error_kind::internal;
  }
}

/// engram-server's answer: 400, 404, 401, 403, 413, 502 (bad gateway: the provider), 503 (retry later), 500.
constexpr int http_status(error_kind k) noexcept {
  switch (k) {
    case error_kind::invalid_input: return 400;
    case error_kind::not_found: return 404;
    case error_kind::unauthorized: return 401;
    case error_kind::forbidden: return 403;
    case error_kind::too_large: return 413;
    case error_kind::provider: return 502;
    case error_kind::storage: return 503;
    case error_kind::internal: break;
  }
  return 500;
}

/// The CLI's exit code: 1 not found, 2 usage or validation error, 3 storage, provider or other failure.
constexpr int exit_code(error_kind k) noexcept {
  switch (k) {
    case error_kind::not_found: return 1;
    case error_kind::invalid_input:
    case error_kind::too_large: return 2;
    default: return 3;
  }
}

}  // namespace engram_app

namespace engram_app::mcp {

/// JSON-RPC 2.0 error codes.
enum class rpc_code : int {
  parse_error = -32700,
  invalid_request = -32600,
  method_not_found = -32601,
  invalid_params = -32602,
  internal_error = -32603,
};

/// How an MCP tool call reports a failure of kind `k`: the prefix of a tool result with isError (the model
/// can read it and retry), or nullopt when the failure is not the model's to handle and is answered as a
/// JSON-RPC error (rpc_error_code).
constexpr std::optional<std::string_view> tool_error_prefix(error_kind k) noexcept {
  switch (k) {
    case error_kind::invalid_input:
    case error_kind::too_large: return "invalid input: ";
    case error_kind::not_found: return "not found: ";
    case error_kind::forbidden: return "not allowed: ";
    case error_kind::provider: return "a model provider failed: ";
    case error_kind::storage: return "storage unavailable: ";
    case error_kind::unauthorized:
    case error_kind::internal: break;
  }
  return std::nullopt;
}

/// The JSON-RPC error a failure of kind `k` becomes when it escapes a tool call (see tool_error_prefix).
constexpr rpc_code rpc_error_code(error_kind) noexcept { return rpc_code::internal_error; }

}  // namespace engram_app::mcp
