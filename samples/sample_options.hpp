// How the samples read their command line: Boost.Program_options, and a bad
// argument prints what was wrong and the usage (exit 2) instead of aborting.
#pragma once

#include <boost/program_options.hpp>

#include <cstdlib>
#include <iostream>
#include <string_view>

namespace samples {

namespace po = boost::program_options;

/// Parses argv against `options` (and `positional`, whose names must be in
/// `options` too). Exits 0 after printing --help, 2 after a bad argument.
inline po::variables_map parse_options(int argc, char** argv, std::string_view usage,
                                       po::options_description options,
                                       const po::positional_options_description& positional = {})
{
    options.add_options()("help,h", "print this help");
    const auto program = usage.substr(0, usage.find(' '));
    po::variables_map vm;
    try {
        po::store(po::command_line_parser(argc, argv).options(options).positional(positional).run(),
                  vm);
        if (vm.count("help")) {
            std::cout << "usage: " << usage << "\n\n" << options;
            std::exit(0);
        }
        po::notify(vm);
    } catch (const po::error& e) {
        std::cerr << program << ": " << e.what() << "\nusage: " << usage << "\n";
        std::exit(2);
    }
    return vm;
}

} // namespace samples
