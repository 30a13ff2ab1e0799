/* Files compiled into the binary by scripts/embed_files.py: migrations, openapi.yaml and the web page. */
#ifndef SALESOPS_EMBEDDED_H
#define SALESOPS_EMBEDDED_H
#include <stddef.h>

struct so_embedded {
    const char *name;
    const char *text;
    size_t length;
};

/* Both arrays end with an entry whose name is NULL. */
extern const struct so_embedded so_migrations[];
extern const struct so_embedded so_openapi[];
extern const struct so_embedded so_web_assets[]; /* src/web/: index.html, app.js, app.css, ... */

#endif
