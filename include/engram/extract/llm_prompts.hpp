#pragma once
/// @file extract/llm_prompts.hpp
/// The built-in instructions llm_extractor gives a chat model, and how options extend them.

#include <engram/extract/actions.hpp>  // memory_category

#include <string>
#include <string_view>
#include <vector>

namespace engram::inline v0 {

/// What the extraction prompt is told beyond its base text.
struct fact_prompt_parts {
  bool agent_memory = false;  ///< remember what the assistant said about itself, not what the user said
  bool additive = false;      ///< facts are stored as they are (no later reconciliation)
  std::string custom_instructions{};
  std::vector<std::string> includes{};
  std::vector<std::string> excludes{};
  std::vector<memory_category> categories{};
  std::string today{};  ///< YYYY-MM-DD, to resolve relative dates
};

namespace detail {

inline std::string join_list(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& s : items) out += (out.empty() ? "" : ", ") + s;
  return out;
}

/// How the extraction call dates facts against the conversation's day `today` (YYYY-MM-DD). With categories
/// every fact is an object already, so only the extra member is asked for.
inline std::string dating_instructions(const std::string& today, bool objects) {
  std::string p =
      "\nResolve relative times ('yesterday', 'last month', 'two years ago') against that day. When a fact says "
      "when it became true (\"moved to Porto last month\", \"started at Acme in 2023\"), give that day as "
      "\"valid_from\" in YYYY-MM-DD form (the first day of the month or year when only those are known)";
  p += objects ? ", as a member of the fact's object."
               : ", writing that fact as an object instead of a string: {\"fact\": \"...\", \"valid_from\": "
                 "\"YYYY-MM-DD\"}.";
  p += " Give no valid_from when the time is not said, nor for plans and anything not yet true on " + today +
       " (\"will move in March\" is a plan: keep it as a fact without valid_from).";
  return p;
}

}  // namespace detail

/// The built-in system prompt of the extraction call (before fact_prompt_parts are appended).
inline std::string default_fact_prompt(bool agent_memory) {
  const std::string_view who = agent_memory ? "the assistant" : "the user";
  const std::string_view turns = agent_memory ? "assistant" : "user";
  std::string p;
  p += "You keep the long-term memory of an AI assistant. Read the conversation and write down the facts about ";
  p += who;
  p += " that will still be worth knowing in a later conversation: identity, preferences and dislikes, plans and "
       "goals, relationships, health, work, habits, possessions, important dates, and decisions taken.\n\n"
       "Rules:\n"
       "- Take facts only from the ";
  p += turns;
  p += " turns; the other turns are context for understanding them.\n"
       "- One fact per entry: a short, complete sentence that makes sense on its own, without the conversation "
       "(name people and things instead of using pronouns, turn 'tomorrow' into a date).\n"
       "- Write about ";
  p += who;
  p += " in the third person, in the language the conversation is held in.\n"
       "- Leave out greetings, small talk, questions without an answer, and anything only true for this moment.\n"
       "- Do not invent or guess anything that was not said.\n"
       "- If nothing is worth remembering, return an empty list.\n\n"
       "Answer with a JSON object and nothing else, shaped as {\"facts\": [\"...\", \"...\"]}.";
  return p;
}

/// The built-in system prompt of a procedural add: the agent's run summarised as one memory.
inline std::string default_procedural_prompt() {
  return "You keep the procedural memory of an AI agent: what it did, so that it can resume or repeat the work. "
         "Read the run below (the task, the agent's actions and what they returned) and write one summary of "
         "it.\n\n"
         "Rules:\n"
         "- Start with the task in one sentence, then number every step in order: the action taken, its "
         "important inputs, and its result (keep exact values: names, numbers, URLs, file paths, errors).\n"
         "- Say where the run stands at the end: done, or what is left and what comes next.\n"
         "- Keep what matters for continuing; leave out chatter. Do not invent steps or results.\n\n"
         "Answer with a JSON object and nothing else, shaped as {\"procedure\": \"...\"}.";
}

/// The built-in system prompt of the reconcile call.
inline std::string default_update_prompt() {
  return "You maintain the long-term memory of an AI assistant. You are given the memories it holds now, each "
         "under a short id, and new facts just learned. Decide, fact by fact, how the memory must change:\n"
         "- ADD: the fact is new information. Give its text; the id of an ADD may be any new string.\n"
         "- UPDATE: the fact refines, corrects or completes an existing memory about the same thing. Use that "
         "memory's id, give the full new text (keep the details of the old one that are still true) and the old "
         "text as old_memory.\n"
         "- DELETE: the fact shows an existing memory is no longer true. Use that memory's id.\n"
         "- NONE: the fact is already remembered. Use the id of the memory that holds it.\n"
         "Only use ids from the list of existing memories for UPDATE, DELETE and NONE. Two facts that say the "
         "same thing need only one entry. Keep the language of the facts.\n\n"
         "Dates: \"since\" is the day from which a memory or a fact holds (a memory without one is of unknown "
         "age). A fact's \"newer_than\" lists the ids of memories dated before it, \"older_than\" those "
         "dated after it. A newer fact that contradicts an older memory is a change in the world: the memory "
         "was true until then, so UPDATE it to the new state. A fact that says a memory was wrong from the "
         "start (a misspelt name, a mistaken detail, \"actually, it was ...\") is a correction: UPDATE it and "
         "add \"correction\": true to that entry. A fact older than a memory never replaces it: the memory is "
         "the later state; ADD the fact only if it is worth keeping as history, else NONE.\n\n"
         "Answer with a JSON object and nothing else, shaped as {\"memory\": [{\"id\": \"0\", \"text\": \"...\", "
         "\"event\": \"ADD|UPDATE|DELETE|NONE\", \"old_memory\": \"...\"}]}, with \"correction\": true only on an "
         "UPDATE that corrects a mistake.";
}

/// `base` followed by the sections the options ask for (date, include/exclude lists, categories, custom
/// instructions). When categories are given, facts are asked for as objects with "text" and "categories".
inline std::string compose_fact_prompt(std::string base, const fact_prompt_parts& parts) {
  if (parts.additive)
    base +=
        "\n\nThe facts are stored exactly as you write them, next to what is already remembered: make each "
        "one complete and precise.";
  if (!parts.today.empty()) {
    base += "\n\nToday is " + parts.today + ": the conversation took place on that day.";
    base += detail::dating_instructions(parts.today, !parts.categories.empty());
  }
  if (!parts.includes.empty())
    base += "\n\nOnly remember information of these kinds: " + detail::join_list(parts.includes) + ".";
  if (!parts.excludes.empty())
    base += "\n\nNever remember information of these kinds: " + detail::join_list(parts.excludes) + ".";
  if (!parts.categories.empty()) {
    base += "\n\nFile every fact under one or more of these categories:";
    for (const auto& c : parts.categories)
      base += "\n- " + c.name + (c.description.empty() ? std::string() : ": " + c.description);
    base +=
        "\nThen write each fact as an object instead of a string: {\"facts\": [{\"text\": \"...\", "
        "\"categories\": [\"...\"]}]}, adding \"valid_from\" to the object of a dated fact.";
  }
  if (!parts.custom_instructions.empty())
    base += "\n\nAdditional instructions from the application:\n" + parts.custom_instructions;
  return base;
}

}  // namespace engram::inline v0
