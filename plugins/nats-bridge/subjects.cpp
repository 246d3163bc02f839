#include "subjects.hpp"

#include "slotbus/slot_name.hpp"

#include <algorithm>
#include <vector>

namespace slotbus::bridge {

namespace {

std::vector<std::string_view> split(std::string_view text, std::string_view separators)
{
    std::vector<std::string_view> out;
    for (std::size_t at = 0;;) {
        const auto end = text.find_first_of(separators, at);
        out.push_back(text.substr(at, end == std::string_view::npos ? end : end - at));
        if (end == std::string_view::npos)
            return out;
        at = end + 1;
    }
}

/// What keeps a component from being a NATS token, or empty.
std::string_view unfit_token(std::string_view token)
{
    if (token.empty())
        return "an empty level";
    for (const char c : token) {
        if (c == '.')
            return "a '.' (NATS separates levels with it)";
        if (c == '*' || c == '>')
            return "a NATS wildcard inside a level";
        if (static_cast<unsigned char>(c) <= ' ' || c == '\x7f')
            return "white space or a control character";
    }
    return {};
}

} // namespace

std::optional<std::string> subject_of_name(std::string_view path, std::string& why)
{
    std::string subject;
    for (const auto token : split(path, "\\/")) {
        if (const auto unfit = unfit_token(token); !unfit.empty()) {
            why = std::string(path) + ": has " + std::string(unfit) + ", no NATS subject";
            return std::nullopt;
        }
        if (!subject.empty())
            subject += '.';
        subject += fold_case(token);
    }
    return subject;
}

std::optional<std::string> subject_of_pattern(const topic_pattern& pattern, std::string& why)
{
    std::string subject;
    for (const auto& c : pattern.components()) {
        if (!subject.empty())
            subject += '.';
        if (c == "*" || c == "**") {
            subject += c == "*" ? "*" : ">";
            continue;
        }
        if (const auto unfit = unfit_token(c); !unfit.empty()) {
            why = pattern.str() + ": has " + std::string(unfit) + ", no NATS subject";
            return std::nullopt;
        }
        subject += c; // already case-folded
    }
    return subject;
}

std::optional<std::string> checked_subject_pattern(std::string_view subject, std::string& why)
{
    const auto tokens = split(subject, ".");
    for (std::size_t i = 0; i < tokens.size(); ++i) {
        const auto t = tokens[i];
        if (t == "*" || (t == ">" && i + 1 == tokens.size()))
            continue;
        if (t == ">") {
            why = std::string(subject) + ": '>' must be its last level";
            return std::nullopt;
        }
        if (const auto unfit = unfit_token(t); !unfit.empty()) {
            why = std::string(subject) + ": has " + std::string(unfit);
            return std::nullopt;
        }
    }
    return std::string(subject);
}

std::optional<std::string> name_of_subject(std::string_view subject, std::string& why)
{
    std::string path;
    for (const auto token : split(subject, ".")) {
        // A level with a separator of its own could name another host
        // (`\\OTHER\mailslot\x`): a message never chooses where a record goes.
        if (token.find_first_of("\\/") != std::string_view::npos) {
            why = std::string(subject) + ": a level has '\\' or '/', no slot name";
            return std::nullopt;
        }
        if (!path.empty())
            path += '\\';
        path += token;
    }
    std::error_code ec;
    const auto name = slot_name::parse(path, ec);
    if (ec || name.scope() != name_scope::local) {
        why = std::string(subject) + ": no slot name (" + (ec ? ec.message() : "not local") + ")";
        return std::nullopt;
    }
    return path;
}

} // namespace slotbus::bridge
