#include "slotbus/stop_signals.hpp"

#include <boost/asio/signal_set.hpp>

#include <csignal>

namespace slotbus {

struct stop_signals::impl {
    boost::asio::signal_set signals;
    int received = 0;
    explicit impl(connection& bus) : signals(bus.get_executor(), SIGTERM, SIGINT) {}
};

stop_signals::stop_signals(connection& bus, std::function<void(int)> on_stop)
    : impl_(std::make_unique<impl>(bus))
{
    if (!on_stop)
        on_stop = [&bus](int) { bus.stop(); };
    impl_->signals.async_wait([state = impl_.get(), on_stop = std::move(on_stop)](
                                  const boost::system::error_code& ec, int signo) {
        if (ec) // cancelled: the object went first
            return;
        state->received = signo;
        on_stop(signo);
    });
}

stop_signals::~stop_signals() = default;

int stop_signals::received() const noexcept
{
    return impl_->received;
}

} // namespace slotbus
