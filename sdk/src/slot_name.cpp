#include "slotbus/slot_name.hpp"

#include "slotbus/error.hpp"

#include <algorithm>

namespace slotbus {
namespace {

bool is_separator(char c)
{
    return c == '\\' || c == '/';
}

char lower(char c)
{
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b)
{
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                              [](char x, char y) { return lower(x) == lower(y); });
}

// Host and domain names: DNS/NetBIOS characters only.
bool valid_server(std::string_view s)
{
    if (s == "." || s == "*")
        return true;
    if (s.empty() || s.size() > 253)
        return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_' || c == '.';
    });
}

bool valid_component(std::string_view c)
{
    if (c.empty() || c == "." || c == "..")
        return false;
    return std::none_of(c.begin(), c.end(), [](char ch) {
        auto u = static_cast<unsigned char>(ch);
        return u < 0x20 || u == 0x7f || ch == '*' || ch == '?';
    });
}

/// The length of the well-formed sequence at the front of `s`, or 0.
std::size_t utf8_sequence(std::string_view s) noexcept
{
    const auto b = [&](std::size_t i) { return static_cast<unsigned char>(s[i]); };
    const auto c0 = b(0);
    if (c0 < 0x80)
        return 1;
    std::size_t n = 0;
    unsigned char lo = 0x80, hi = 0xbf; // the second byte's range (Unicode table 3-7)
    if (c0 >= 0xc2 && c0 <= 0xdf)
        n = 2;
    else if (c0 >= 0xe0 && c0 <= 0xef) {
        n = 3;
        lo = c0 == 0xe0 ? 0xa0 : 0x80; // no overlong forms
        hi = c0 == 0xed ? 0x9f : 0xbf; // no surrogates
    } else if (c0 >= 0xf0 && c0 <= 0xf4) {
        n = 4;
        lo = c0 == 0xf0 ? 0x90 : 0x80;
        hi = c0 == 0xf4 ? 0x8f : 0xbf; // nothing past U+10FFFF
    } else {
        return 0;
    }
    if (s.size() < n || b(1) < lo || b(1) > hi)
        return 0;
    for (std::size_t i = 2; i < n; ++i)
        if (b(i) < 0x80 || b(i) > 0xbf)
            return 0;
    return n;
}

} // namespace

bool is_valid_utf8(std::string_view text) noexcept
{
    while (!text.empty()) {
        const auto n = utf8_sequence(text);
        if (n == 0)
            return false;
        text.remove_prefix(n);
    }
    return true;
}

std::string to_valid_utf8(std::string_view text)
{
    std::string out;
    out.reserve(text.size());
    while (!text.empty()) {
        const auto n = utf8_sequence(text);
        if (n == 0)
            out += "\xEF\xBF\xBD"; // U+FFFD for the byte that starts no sequence
        else
            out.append(text.substr(0, n));
        text.remove_prefix(n ? n : 1);
    }
    return out;
}

std::string fold_case(std::string_view text)
{
    std::string out(text);
    std::transform(out.begin(), out.end(), out.begin(), lower);
    return out;
}

slot_name slot_name::parse(std::string_view text, std::error_code& ec)
{
    ec.clear();
    slot_name name;
    if (!is_valid_utf8(text)) {
        ec = error::invalid_name;
        return {};
    }
    std::string_view rest = text;

    if (rest.size() >= 2 && is_separator(rest[0]) && is_separator(rest[1])) {
        rest.remove_prefix(2);
        auto end = std::find_if(rest.begin(), rest.end(), is_separator);
        std::string_view server = rest.substr(0, static_cast<std::size_t>(end - rest.begin()));
        rest.remove_prefix(server.size());
        if (!valid_server(server) || rest.empty()) {
            ec = error::invalid_name;
            return {};
        }
        rest.remove_prefix(1);
        end = std::find_if(rest.begin(), rest.end(), is_separator);
        std::string_view word = rest.substr(0, static_cast<std::size_t>(end - rest.begin()));
        if (!iequals(word, "mailslot") || word.size() == rest.size()) {
            ec = error::invalid_name;
            return {};
        }
        rest.remove_prefix(word.size() + 1);
        name.server_ = std::string(server);
        name.scope_ = server == "."   ? name_scope::local
                      : server == "*" ? name_scope::broadcast
                                      : name_scope::remote;
    }

    // The path: one or more components.
    std::string path;
    path.reserve(rest.size());
    while (true) {
        auto end = std::find_if(rest.begin(), rest.end(), is_separator);
        std::string_view component = rest.substr(0, static_cast<std::size_t>(end - rest.begin()));
        if (!valid_component(component)) {
            ec = error::invalid_name;
            return {};
        }
        path.append(component);
        if (component.size() == rest.size())
            break;
        path.push_back('\\');
        rest.remove_prefix(component.size() + 1);
    }
    if (path.size() > max_path_length) {
        ec = error::filename_exced_range;
        return {};
    }
    name.key_ = fold_case(path);
    name.path_ = std::move(path);
    return name;
}

slot_name slot_name::parse(std::string_view text)
{
    std::error_code ec;
    auto name = parse(text, ec);
    throw_if(ec, "slotbus::slot_name::parse");
    return name;
}

std::string slot_name::str() const
{
    std::string out = "\\\\";
    out += server_;
    out += "\\mailslot\\";
    out += path_;
    return out;
}

bool operator==(const slot_name& a, const slot_name& b) noexcept
{
    return a.scope_ == b.scope_ && a.key_ == b.key_ && iequals(a.server_, b.server_);
}

} // namespace slotbus
