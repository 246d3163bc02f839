#include "browser.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/test/unit_test.hpp>

#include <csignal>
#include <fcntl.h>
#include <fstream>
#include <openssl/evp.h>
#include <poll.h>
#include <sstream>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

namespace slotbus::test {

namespace json = boost::json;
using clock = std::chrono::steady_clock;

std::optional<std::filesystem::path> browser::find()
{
    // The binary itself before Debian's wrapper script, which only adds flags.
    for (const char* p : {"/usr/lib/chromium/chromium", "/usr/bin/chromium"})
        if (std::filesystem::exists(p))
            return std::filesystem::path(p);
    return std::nullopt;
}

browser::browser(const std::filesystem::path& executable, int width, int height)
    : log_(profile_.path / "chromium.log")
{
    int to[2], from[2];
    BOOST_REQUIRE(::pipe2(to, O_CLOEXEC) == 0 && ::pipe2(from, O_CLOEXEC) == 0);
    const std::string window =
        "--window-size=" + std::to_string(width) + "," + std::to_string(height);
    const std::string profile = "--user-data-dir=" + (profile_.path / "profile").string();
    std::vector<std::string> args{executable.string(),
                                  "--headless=new",
                                  "--remote-debugging-pipe",
                                  "--no-sandbox", // the tests run as root in CI
                                  "--disable-gpu",
                                  "--no-first-run",
                                  "--no-default-browser-check",
                                  "--disable-extensions",
                                  "--disable-background-networking",
                                  "--disable-sync",
                                  "--hide-scrollbars",
                                  window,
                                  profile,
                                  "about:blank"};
    std::vector<char*> argv;
    for (auto& a : args)
        argv.push_back(a.data());
    argv.push_back(nullptr);
    pid_ = ::fork();
    BOOST_REQUIRE(pid_ >= 0);
    if (pid_ == 0) {
        // fd 3: what Chromium reads; fd 4: what it writes. Moved out of the
        // way first (either may be 3 or 4 already); dup2 clears CLOEXEC.
        const int in = ::fcntl(to[0], F_DUPFD, 10), out = ::fcntl(from[1], F_DUPFD, 10);
        ::dup2(in, 3);
        ::dup2(out, 4);
        const int err = ::open(log_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
        ::dup2(err, 2);
        ::dup2(err, 1);
        ::execv(argv[0], argv.data());
        ::_exit(127);
    }
    ::close(to[0]);
    ::close(from[1]);
    to_browser_ = to[1];
    from_browser_ = from[0];
    // The blank page it opened: attach to it, with a session of its own.
    const auto targets = call("Target.getTargets", {}, 20s);
    std::string target;
    for (const auto& t : targets.at("targetInfos").as_array())
        if (t.at("type") == "page")
            target = std::string(t.at("targetId").as_string());
    BOOST_REQUIRE_MESSAGE(!target.empty(), "Chromium opened no page: " << log());
    session_ = std::string(call("Target.attachToTarget", {{"targetId", target}, {"flatten", true}})
                               .at("sessionId")
                               .as_string());
    call("Page.enable");
    call("Runtime.enable");
}

browser::~browser()
{
    if (to_browser_ >= 0)
        ::close(to_browser_);
    if (from_browser_ >= 0)
        ::close(from_browser_);
    if (pid_ > 0) {
        ::kill(pid_, SIGTERM);
        for (int i = 0; i < 50; ++i) {
            if (::waitpid(pid_, nullptr, WNOHANG) == pid_)
                return;
            std::this_thread::sleep_for(100ms);
        }
        ::kill(pid_, SIGKILL);
        ::waitpid(pid_, nullptr, 0);
    }
}

std::string browser::log() const
{
    std::ifstream in(log_);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
}

std::optional<json::value> browser::receive(clock::time_point deadline)
{
    for (;;) {
        if (const auto end = received_.find('\0'); end != std::string::npos) {
            auto message = json::parse(std::string_view(received_).substr(0, end));
            received_.erase(0, end + 1);
            return message;
        }
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        if (left.count() <= 0)
            return std::nullopt;
        pollfd p{from_browser_, POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(left.count())) <= 0)
            continue;
        char buffer[65536];
        const auto n = ::read(from_browser_, buffer, sizeof buffer);
        BOOST_REQUIRE_MESSAGE(n > 0, "Chromium closed its pipe: " << log());
        received_.append(buffer, static_cast<std::size_t>(n));
    }
}

json::value browser::call(const std::string& method, json::object params,
                          std::chrono::milliseconds deadline)
{
    const auto id = next_id_++;
    json::object message{{"id", id}, {"method", method}, {"params", std::move(params)}};
    if (!session_.empty())
        message["sessionId"] = session_;
    auto text = json::serialize(message);
    text.push_back('\0');
    for (std::size_t sent = 0; sent < text.size();) {
        const auto n = ::write(to_browser_, text.data() + sent, text.size() - sent);
        BOOST_REQUIRE_MESSAGE(n > 0, "cannot write to Chromium: " << log());
        sent += static_cast<std::size_t>(n);
    }
    const auto until = clock::now() + deadline;
    while (auto reply = receive(until)) {
        const auto& o = reply->as_object();
        const auto* got = o.if_contains("id");
        if (!got || got->to_number<std::uint64_t>() != id)
            continue; // an event, or an answer to no one waiting
        if (const auto* error = o.if_contains("error"))
            BOOST_FAIL(method << ": " << json::serialize(*error));
        return o.at("result");
    }
    BOOST_FAIL(method << ": Chromium did not answer in time; its log: " << log());
    return {};
}

void browser::open(const std::string& url, std::chrono::milliseconds deadline)
{
    call("Page.navigate", {{"url", url}}, deadline);
    BOOST_REQUIRE_MESSAGE(wait_for("document.readyState === 'complete'", deadline),
                          url << " did not load");
}

json::value browser::evaluate(const std::string& expression)
{
    const auto r =
        call("Runtime.evaluate",
             {{"expression", expression}, {"returnByValue", true}, {"awaitPromise", true}});
    const auto& o = r.as_object();
    if (const auto* thrown = o.if_contains("exceptionDetails"))
        BOOST_FAIL(expression << " threw: " << json::serialize(*thrown));
    const auto& result = o.at("result").as_object();
    return result.contains("value") ? result.at("value") : json::value();
}

bool browser::wait_for(const std::string& expression, std::chrono::milliseconds deadline)
{
    const auto until = clock::now() + deadline;
    do {
        const auto v = evaluate("!!(" + expression + ")");
        if (v.is_bool() && v.get_bool())
            return true;
        std::this_thread::sleep_for(50ms);
    } while (clock::now() < until);
    return false;
}

void browser::screenshot(const std::filesystem::path& png)
{
    const auto r = call("Page.captureScreenshot", {{"format", "png"}});
    const auto& data = r.at("data").as_string();
    std::string bytes(data.size() / 4 * 3 + 3, '\0');
    const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(bytes.data()),
                                  reinterpret_cast<const unsigned char*>(data.data()),
                                  static_cast<int>(data.size()));
    BOOST_REQUIRE(n > 0);
    // EVP_DecodeBlock counts the padding's zero bytes too.
    std::size_t size = static_cast<std::size_t>(n);
    for (auto it = data.rbegin(); it != data.rend() && *it == '='; ++it)
        --size;
    std::ofstream(png, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(size));
}

} // namespace slotbus::test
