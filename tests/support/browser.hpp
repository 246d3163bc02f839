// A real headless Chromium for tests, driven over the DevTools protocol on
// a pipe (--remote-debugging-pipe: NUL-separated JSON on fds 3 and 4), so
// no WebSocket client and no npm package sit between the test and the page.
#pragma once

#include "child.hpp"

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>

namespace slotbus::test {

class browser {
public:
    /// Where Debian's chromium is, or nothing.
    static std::optional<std::filesystem::path> find();

    /// Starts it headless, with a fresh profile, on one blank page.
    explicit browser(const std::filesystem::path& executable, int width = 1280, int height = 1500);
    ~browser();
    browser(const browser&) = delete;
    browser& operator=(const browser&) = delete;

    /// Opens `url` and waits for the page's load event.
    void open(const std::string& url, std::chrono::milliseconds deadline = 10s);
    /// The value of a JavaScript expression in the page (promises awaited);
    /// a thrown exception fails the test.
    boost::json::value evaluate(const std::string& expression);
    /// Evaluates until the expression is truthy; false at the deadline.
    bool wait_for(const std::string& expression, std::chrono::milliseconds deadline);
    /// The page, as a PNG file.
    void screenshot(const std::filesystem::path& png);
    /// What Chromium printed on stderr (for a failing test's log).
    [[nodiscard]] std::string log() const;

private:
    boost::json::value call(const std::string& method, boost::json::object params = {},
                            std::chrono::milliseconds deadline = 10s);
    /// The next message from Chromium, or nothing at the deadline.
    std::optional<boost::json::value> receive(std::chrono::steady_clock::time_point deadline);

    temp_dir profile_;
    int pid_ = -1;
    int to_browser_ = -1, from_browser_ = -1;
    std::string received_; // bytes after the last NUL
    std::uint64_t next_id_ = 1;
    std::string session_;
    std::filesystem::path log_;
};

} // namespace slotbus::test
