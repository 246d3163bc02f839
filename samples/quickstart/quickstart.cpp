// A slot, a writer and a reader in one program: the README's example.
#include <slotbus/slotbus.hpp>

#include <iostream>

int main()
{
    slotbus::connection reader_bus, writer_bus;
    reader_bus.connect(); // $SLOTBUS_ADDRESS, else the default socket
    writer_bus.connect();

    // The reader creates the slot: one reader, any number of writers.
    auto inbox = slotbus::server_slot::create(reader_bus, "taxes/sue");

    // A writer opens it by name; every write is one record with a real result.
    auto writer = slotbus::client_slot::open(writer_bus, R"(\\.\mailslot\taxes\sue)");
    writer.write("Message one for mailslot.");
    writer.write("Message two for mailslot.");

    std::cout << inbox.info().message_count << " records queued\n";
    std::cout << inbox.read() << '\n' << inbox.read() << '\n';
}
