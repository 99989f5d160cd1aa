#pragma once
/// @file temporal/structured_attributes.hpp
/// Mem0's `structured_attributes`: the calendar facts of a memory's time (year, quarter, ISO week, weekday,
/// ...), derived in UTC from record::valid_since(), never stored. Returned with every memory and filterable
/// as `structured_attributes.<name>`.

#include <engram/time.hpp>

#include <nlohmann/json.hpp>

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace engram::inline v0 {

/// One of the attributes, in the order of structured_attribute_names.
enum class structured_attribute : std::uint8_t {
  year, month, day, quarter, hour, minute, day_of_week, day_of_year, week_of_year, is_weekend
};

/// The attributes' names as Mem0 spells them (the JSON keys and the filter fields' suffixes).
inline constexpr std::array<std::string_view, 10> structured_attribute_names = {
    "year", "month", "day", "quarter", "hour", "minute", "day_of_week", "day_of_year", "week_of_year", "is_weekend"};

/// Lower-case English weekday names, Monday first (ISO 8601 order).
inline constexpr std::array<std::string_view, 7> weekday_names = {"monday", "tuesday",  "wednesday", "thursday",
                                                                  "friday", "saturday", "sunday"};

/// The name of `a` ("day_of_week", ...).
inline constexpr std::string_view to_string(structured_attribute a) noexcept {
  return structured_attribute_names[static_cast<std::size_t>(a)];
}

/// The attribute named `name` (exact, lower case), or std::nullopt.
inline constexpr std::optional<structured_attribute> parse_structured_attribute(std::string_view name) noexcept {
  for (std::size_t i = 0; i < structured_attribute_names.size(); ++i)
    if (structured_attribute_names[i] == name) return static_cast<structured_attribute>(i);
  return std::nullopt;
}

/// The calendar facts of one instant, in UTC.
struct structured_attributes {
  int year = 1970;
  int month = 1;          ///< 1..12
  int day = 1;            ///< 1..31
  int quarter = 1;        ///< 1..4
  int hour = 0;           ///< 0..23
  int minute = 0;         ///< 0..59
  int day_of_week = 3;    ///< 0 = monday .. 6 = sunday (ISO order); named by weekday_names
  int day_of_year = 1;    ///< 1..366
  int week_of_year = 1;   ///< ISO 8601 week number, 1..53 (2024-12-30 is week 1 of 2025)
  bool is_weekend = false;  ///< saturday or sunday

  /// The weekday's name ("wednesday").
  [[nodiscard]] constexpr std::string_view day_of_week_name() const noexcept {
    return weekday_names[static_cast<std::size_t>(day_of_week)];
  }

  friend bool operator==(const structured_attributes&, const structured_attributes&) = default;
};

/// The calendar facts of `t` in UTC. Mem0's example: 2025-03-12T12:34:56Z is a wednesday in week 11, quarter 1,
/// day 71 of the year.
inline structured_attributes structured_attributes_of(timestamp t) noexcept {
  using namespace std::chrono;
  const auto d = floor<days>(t);
  const year_month_day ymd{d};
  const hh_mm_ss<microseconds> tod{t - d};
  const unsigned iso = weekday{d}.iso_encoding();  // 1 = monday .. 7 = sunday
  // ISO 8601: a week belongs to the year of its thursday; week 1 holds the year's first thursday.
  const sys_days thursday = d + days{4 - static_cast<int>(iso)};
  const auto iso_year = year_month_day{thursday}.year();
  structured_attributes a;
  a.year = int(ymd.year());
  a.month = static_cast<int>(unsigned(ymd.month()));
  a.day = static_cast<int>(unsigned(ymd.day()));
  a.quarter = (a.month - 1) / 3 + 1;
  a.hour = static_cast<int>(tod.hours().count());
  a.minute = static_cast<int>(tod.minutes().count());
  a.day_of_week = static_cast<int>(iso) - 1;
  a.day_of_year = static_cast<int>((d - sys_days{ymd.year() / January / 1}).count()) + 1;
  a.week_of_year = static_cast<int>((thursday - sys_days{iso_year / January / 1}).count()) / 7 + 1;
  a.is_weekend = iso >= 6;
  return a;
}

/// Mem0's shape: `{"day", "hour", "year", "month", "minute", "quarter", "is_weekend", "day_of_week" (a name),
/// "day_of_year", "week_of_year"}`.
inline void to_json(nlohmann::json& j, const structured_attributes& a) {
  // Built member by member: an initializer list copies every element and tests each for a key/value pair, which
  // made this object most of the cost of a record's JSON (it is in every memory a route returns).
  j = nlohmann::json::object();
  auto& o = *j.get_ptr<nlohmann::json::object_t*>();
  o.emplace("year", a.year);
  o.emplace("month", a.month);
  o.emplace("day", a.day);
  o.emplace("quarter", a.quarter);
  o.emplace("hour", a.hour);
  o.emplace("minute", a.minute);
  o.emplace("day_of_week", a.day_of_week_name());
  o.emplace("day_of_year", a.day_of_year);
  o.emplace("week_of_year", a.week_of_year);
  o.emplace("is_weekend", a.is_weekend);
}

}  // namespace engram::inline v0
