// An event's `data` as a C++ value, by the schema-evolution rules of
// docs/envelopes.md: for a described struct, fields it does not know are
// ignored and fields the JSON leaves out keep the struct's defaults (an
// `std::optional` member stays empty), so publishers and subscribers can be
// upgraded one at a time. A value that does not fit names its field and the
// type it expected. Other types convert as Boost.JSON converts them.
// append_data writes the other way, straight to JSON text.
#pragma once

#include "slotbus/export.hpp"

#include <boost/describe/members.hpp>
#include <boost/json/value.hpp>
#include <boost/json/value_from.hpp>
#include <boost/json/value_to.hpp>
#include <boost/mp11/algorithm.hpp>

#include <charconv>
#include <concepts>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

namespace slotbus {

namespace detail {

template <class T> struct is_optional : std::false_type {
};
template <class T> struct is_optional<std::optional<T>> : std::true_type {
};
template <class T> struct is_vector : std::false_type {
};
template <class T, class A> struct is_vector<std::vector<T, A>> : std::true_type {
};

template <class T>
concept described_struct =
    std::is_class_v<T> && boost::describe::has_describe_members<T>::value && !is_optional<T>::value;

/// What a JSON value of type T looks like, for error messages.
template <class T> constexpr std::string_view expected_kind()
{
    if constexpr (std::is_same_v<T, bool>)
        return "a boolean";
    else if constexpr (std::is_integral_v<T> && std::is_unsigned_v<T>)
        return "an unsigned integer";
    else if constexpr (std::is_integral_v<T>)
        return "an integer";
    else if constexpr (std::is_floating_point_v<T>)
        return "a number";
    else if constexpr (std::is_convertible_v<T, std::string_view>)
        return "a string";
    else if constexpr (described_struct<T>)
        return "an object";
    else if constexpr (is_vector<T>::value)
        return "an array";
    else
        return "a value of its type";
}

SLOTBUS_API std::string_view kind_of(const boost::json::value& v);

} // namespace detail

/// JSON text as people write it: numbers as numbers (`9.5`, `1.0`, where
/// Boost.JSON 1.81 writes `9.5E0`, `1E0`), nothing else changed. What the
/// SDK writes envelopes with; for a plugin's own files and answers.
SLOTBUS_API std::string json_text(const boost::json::value& v);

namespace detail {

/// Appends `s` as a JSON string: quoted, with what JSON requires escaped.
SLOTBUS_API void append_json_string(std::string& out, std::string_view s);
/// Appends the JSON text of `v`.
SLOTBUS_API void append_json(std::string& out, const boost::json::value& v);
/// Appends a number as the shortest text that reads back the same (`101.25`).
SLOTBUS_API void append_json_number(std::string& out, double d);

/// A type with conversions of its own (tag_invoke), which win over describing it.
template <class T>
concept own_json_conversion = requires(boost::json::value& v, const T& t)
{
    tag_invoke(boost::json::value_from_tag{}, v, t);
};

/// Appends the JSON text of `data` as boost::json::value_from(data) would
/// give it, written straight out for the types events are made of
/// (described structs, strings, numbers, booleans, optionals, vectors), so
/// publishing builds no JSON tree; any other type goes through value_from.
template <class T> void append_data(std::string& out, const T& data)
{
    if constexpr (own_json_conversion<T>) {
        append_json(out, boost::json::value_from(data));
    } else if constexpr (std::is_same_v<T, bool>) {
        out += data ? "true" : "false";
    } else if constexpr (std::is_integral_v<T>) {
        char digits[24];
        out.append(digits, std::to_chars(digits, digits + sizeof digits, data).ptr);
    } else if constexpr (std::is_floating_point_v<T>) {
        append_json_number(out, static_cast<double>(data));
    } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
        append_json_string(out, std::string_view(data));
    } else if constexpr (is_optional<T>::value) {
        if (data)
            append_data(out, *data);
        else
            out += "null";
    } else if constexpr (is_vector<T>::value) {
        out += '[';
        for (std::size_t i = 0; i < data.size(); ++i) {
            if (i)
                out += ',';
            append_data(out, data[i]);
        }
        out += ']';
    } else if constexpr (described_struct<T>) {
        using members = boost::describe::describe_members<T, boost::describe::mod_public |
                                                                 boost::describe::mod_inherited>;
        char separator = '{';
        boost::mp11::mp_for_each<members>([&](auto member) {
            // A member's name is a C++ identifier: nothing in it to escape.
            const std::string_view name = member.name;
            out += separator;
            separator = ',';
            out += '"';
            out += name;
            out += "\":";
            append_data(out, data.*member.pointer);
        });
        if (separator == '{')
            out += '{';
        out += '}';
    } else {
        append_json(out, boost::json::value_from(data));
    }
}

/// Where a conversion failed, written on the way out of it: nothing is
/// spent on the path of a value that converts.
struct conversion_failure {
    std::string path;   ///< "price", "legs[2].price"; empty: the data itself
    std::string reason; ///< "expected a number, got a string"

    void inside_member(std::string_view member)
    {
        path.insert(0, path.empty() || path.front() == '[' ? std::string(member)
                                                           : std::string(member) + '.');
    }
    void inside_element(std::size_t index)
    {
        path.insert(0, '[' + std::to_string(index) + ']' +
                           (path.empty() || path.front() == '[' ? "" : "."));
    }
};

/// The member `key` of `object`, looked for first at `hint`, where a
/// publisher that writes the struct's members in order put it.
inline const boost::json::value* member_at(const boost::json::object& object, std::string_view key,
                                           std::size_t& hint)
{
    if (hint < object.size()) {
        const auto& at = object.begin()[hint];
        if (at.key() == key) {
            ++hint;
            return &at.value();
        }
    }
    return object.if_contains(key);
}

/// Converts `v` into `out`; false with `failed` saying where and why.
template <class T> bool convert(const boost::json::value& v, T& out, conversion_failure& failed)
{
    auto fail = [&] {
        failed.reason =
            "expected " + std::string(expected_kind<T>()) + ", got " + std::string(kind_of(v));
        return false;
    };
    if constexpr (is_optional<T>::value) {
        if (v.is_null()) {
            out.reset();
            return true;
        }
        return convert(v, out.emplace(), failed);
    } else if constexpr (described_struct<T>) {
        const auto* object = v.if_object();
        if (!object)
            return fail();
        using members = boost::describe::describe_members<T, boost::describe::mod_public |
                                                                 boost::describe::mod_inherited>;
        bool ok = true;
        std::size_t hint = 0;
        boost::mp11::mp_for_each<members>([&](auto member) {
            if (!ok)
                return;
            const auto* field = member_at(*object, member.name, hint);
            if (!field) // absent: the default stays (schema evolution)
                return;
            if (!(ok = convert(*field, out.*member.pointer, failed)))
                failed.inside_member(member.name);
        });
        return ok;
    } else if constexpr (is_vector<T>::value) {
        const auto* array = v.if_array();
        if (!array)
            return fail();
        out.clear();
        out.reserve(array->size());
        for (std::size_t i = 0; i < array->size(); ++i)
            if (!convert((*array)[i], out.emplace_back(), failed)) {
                failed.inside_element(i);
                return false;
            }
        return true;
    } else {
        auto converted = boost::json::try_value_to<T>(v);
        if (!converted)
            return fail();
        out = std::move(*converted);
        return true;
    }
}

} // namespace detail

/// `data` as a T; std::nullopt with `why` ("field price: expected a number,
/// got a string") when it does not fit. Never throws.
template <class T>
requires std::default_initializable<T> std::optional<T> from_data(const boost::json::value& data,
                                                                  std::string* why = nullptr)
{
    std::optional<T> out(std::in_place);
    detail::conversion_failure failed;
    if (!detail::convert(data, *out, failed)) {
        if (why)
            *why = (failed.path.empty() ? std::string("data") : "field " + failed.path) + ": " +
                   failed.reason;
        return std::nullopt;
    }
    return out;
}

} // namespace slotbus
