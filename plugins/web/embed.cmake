# Turns the page's files into one C++ source (cmake -P, at build time):
#   -DOUT=file.cpp -DFILES=a.html,b.js -DBASE=dir
# so the plugin serves them from memory: no files to install, no build step.
string(REPLACE "," ";" FILES "${FILES}")
set(body "")
set(entries "")
set(i 0)
foreach(file IN LISTS FILES)
    file(READ ${BASE}/${file} hex HEX)
    string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
    string(APPEND body "constexpr unsigned char file_${i}[] = {${bytes}0};\n")
    if(file MATCHES "\\.html$")
        set(type "text/html; charset=utf-8")
    elseif(file MATCHES "\\.js$")
        set(type "text/javascript; charset=utf-8")
    elseif(file MATCHES "\\.css$")
        set(type "text/css; charset=utf-8")
    else()
        set(type "application/octet-stream")
    endif()
    string(APPEND entries "        {\"/${file}\", \"${type}\", {reinterpret_cast<const char*>(file_${i}), sizeof file_${i} - 1}},\n")
    math(EXPR i "${i} + 1")
endforeach()
file(WRITE ${OUT}.new "// Made by plugins/web/embed.cmake from plugins/web/page/: do not edit.
#include \"http_server.hpp\"

namespace slotbus::web {
namespace {
${body}} // namespace

const std::vector<asset>& page_assets()
{
    static const std::vector<asset> all{
${entries}    };
    return all;
}

} // namespace slotbus::web
")
file(COPY_FILE ${OUT}.new ${OUT} ONLY_IF_DIFFERENT)
