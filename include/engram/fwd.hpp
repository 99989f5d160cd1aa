#pragma once
/// @file fwd.hpp
/// Declarations of basic_memory, the default policies and engram::memory, for headers that only name them.

namespace engram::inline v0 {
class hashing_embedder;
class flat_index;
class memory_store;
class file_store;
struct verbatim_extractor;
struct mem0_scope_keys;
template <class Embedder, class Index, class Store, class Extractor, class Keys = mem0_scope_keys>
class basic_memory;

/// The embedded default: offline hashing embedder, exact flat index, volatile store, verbatim extractor.
using memory = basic_memory<hashing_embedder, flat_index, memory_store, verbatim_extractor>;
/// The same, durable: memories live in a file_store directory and survive restarts and crashes.
using persistent_memory = basic_memory<hashing_embedder, flat_index, file_store, verbatim_extractor>;
}  // namespace engram::inline v0
