// Everything a plugin author needs, in one include.
#pragma once

#include "slotbus/address.hpp"
#include "slotbus/client_slot.hpp"
#include "slotbus/connection.hpp"
#include "slotbus/envelope.hpp"
#include "slotbus/error.hpp"
#include "slotbus/host_admin.hpp"
#include "slotbus/publisher.hpp"
#include "slotbus/request_reply.hpp"
#include "slotbus/server_slot.hpp"
#include "slotbus/slot_info.hpp"
#include "slotbus/slot_name.hpp"
#include "slotbus/stop_signals.hpp"
#include "slotbus/subscriber.hpp"
#include "slotbus/subscription.hpp"
#include "slotbus/topic_pattern.hpp"
#include "slotbus/version.hpp"
