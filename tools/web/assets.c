/* assets.c — the pages' stylesheet and script, compiled into the binary from
 * tools/web/assets/ (pages work offline: no CDN, no file beside the binary). Each
 * is its file's bytes and a NUL; its length (without the NUL) is a size_t beside. */
#include <stddef.h>

#include "web.h"

#define ASSET(name, file)                                    \
    ".section .rodata\n"                                     \
    ".global " #name "\n"                                    \
    ".type " #name ", @object\n" #name ":\n"                 \
    ".incbin \"" file "\"\n"                                 \
    ".byte 0\n" #name "_end:\n"                              \
    ".balign 8\n"                                            \
    ".global " #name "_len\n"                                \
    ".type " #name "_len, @object\n" #name "_len:\n"         \
    ".quad " #name "_end - " #name " - 1\n"                  \
    ".previous\n"

__asm__(ASSET(web_css, "tools/web/assets/style.css") ASSET(web_js, "tools/web/assets/page.js"));
