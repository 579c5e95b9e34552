/* main.c — the latentdb command: dispatch to subcommands, help, version, and the
 * error conventions (message on stderr, exit 1 on failure, 2 on usage errors). */
#include <malloc.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "latentdb.h"

static const char *USAGE =
    "usage: latentdb <command> [args]\n"
    "\n"
    "Databases:\n"
    "  init DB [--tokenizer tokenizer.json] [--skip-tokens IDS] [--values bf16|f16|f32] [--json]\n"
    "  dict add DB NAME PATH [--json]           register a dictionary\n"
    "  dict ls DB [--json]\n"
    "  ingest DB --dict NAME[,NAME...] --tokens T.npy --acts A.npy [--ctx N]\n"
    "         [--source LABEL] [--again] [--json]\n"
    "                                           encode a corpus and store its codes\n"
    "  info DB [--json]\n"
    "  runs DB [--json]                         the runs (ingests, imports, streams) stored\n"
    "  check DB [--digest] [--repair] [--json]  verify everything; print the content digest;\n"
    "                                           --repair rebuilds what is derived (indexes,\n"
    "                                           summaries, catalog) from the sequences and codes\n"
    "  compact DB [--json]                      give back the free space inside data.mdb\n"
    "  dict rm DB NAME                          remove a dictionary and its codes\n"
    "  dict set-path DB NAME PATH               its weights moved\n"
    "  set-skip DB IDS                          a new skip set; summaries recomputed\n"
    "  set-tokenizer DB tokenizer.json [--keep-skip]\n"
    "                                           store a tokenizer in an existing DB\n"
    "  top DB DICT LATENT [-k 20] [--context 8] [--distinct-seq] [--include-special] [--json]\n"
    "  latent DB DICT LATENT [--bins 50] [--json]\n"
    "  density DB DICT [--bins 50] [--counts] [--json]\n"
    "  samples DB DICT LATENT [--groups 10] [--per-group 5] [--by count|value] [--seed 0] [--json]\n"
    "  cooc DB DICT LATENT [--with DICT2] [-k 20] [--scope token|window:N|seq]\n"
    "       [--sort jaccard|count|npmi] [--json]\n"
    "  seq DB SEQ [--dict NAME] [-k 5] [--json]\n"
    "  label DB DICT LATENT TEXT [--json]\n"
    "  label DB DICT --file F|- [--json]        labels from LATENT<TAB>TEXT lines\n"
    "  export DB DICT [--top 20] [--samples 20] [--latents A-B] > out.jsonl\n"
    "  import DB --dict NAME --tokens T.npy --codes C.npz [--ctx N] [--source LABEL] [--again]\n"
    "         [--json]\n"
    "\n"
    "Pages:\n"
    "  serve DB [--port 8080] [--host 127.0.0.1] the pages and a JSON API over HTTP\n"
    "  page DB DICT LATENT -o page.html          one latent's page as a self-contained file\n"
    "\n"
    "Text:\n"
    "  search DB DICT TEXT [-k 20] [--where last|all] [--json]\n"
    "  search DB DICT --text-file F|- ...        (TEXT from a file, - : standard input)\n"
    "                                           latents that fire where TEXT occurs in the corpus\n"
    "  search DB DICT --acts Q.npy [--tokens QT.npy] [-k 20] [--json]\n"
    "                                           latents of your own activations\n"
    "  tokenize TOKENIZER (TEXT | --file F|-) [--bos] [--json]   ids and pieces\n"
    "  tokenize TOKENIZER --file F|DIR|- --out T.npy [--ctx N] [--no-bos] [--json]\n"
    "                                           token ids of a corpus, one row per document/window\n"
    "\n"
    "Dictionaries (SAEs, transcoders):\n"
    "  dict show PATH [--json]                  what a dictionary folder or file holds\n"
    "  dict eval PATH --acts A.npy [--acts-out B.npy] [--json]\n"
    "         [--tokens T.npy [--skip-tokens IDS | --tokenizer tokenizer.json]]\n"
    "                                           encode + decode: FVE, MSE, L0, dead latents\n"
    "\n"
    "Formats: SAELens (cfg.json + sae_weights.safetensors), Gemma Scope params.npz,\n"
    "Gemma Scope 2 (config.json + params.safetensors), EleutherAI sparsify (cfg.json +\n"
    "sae.safetensors). See README.md.\n"
    "\n"
    "  help [CMD [SUB]] | CMD --help | --help | --version\n";

/* A message on stderr as one line, whatever names or stored strings it quotes
 * (cli_put_text: invalid UTF-8 as U+FFFD, controls escaped). */
static void message(const char *prefix, const char *fmt, va_list ap)
{
    char *m = NULL;
    fputs(prefix, stderr);
    if (vasprintf(&m, fmt, ap) < 0)
        fputs(fmt, stderr);
    else
        cli_put_text(stderr, m, strlen(m));
    free(m);
    fputc('\n', stderr);
}

int cli_fail(const char *fmt, ...)
{
    va_list ap;
    cli_progress_end();
    va_start(ap, fmt);
    message("latentdb: ", fmt, ap);
    va_end(ap);
    return 1;
}

/* `latentdb CMD ... --help` (or `CMD -h` alone; "-h" among other arguments may be a
 * search text or a label): the command runs with only "--help", and the usage it would
 * print after refusing it goes to stdout, and the process ends there with status 0
 * (it is refused while arguments are read, before anything is opened; a caller that
 * went on after a 0 would use arguments it never read). */
static int help_asked;

int cli_usage(const char *usage, const char *fmt, ...)
{
    if (help_asked) {
        fputs(usage, stdout);
        fflush(stdout);
        exit(0);
    }
    va_list ap;
    va_start(ap, fmt);
    message("latentdb: ", fmt, ap);
    va_end(ap);
    fputs(usage, stderr);
    return EXIT_USAGE;
}

void cli_warn(const char *fmt, ...)
{
    va_list ap;
    cli_progress_end();
    va_start(ap, fmt);
    message("latentdb: warning: ", fmt, ap);
    va_end(ap);
}

void cli_blas_note(void)
{
    static int told;
    const char *better;
    if (told || !(better = ldb_blas_better_core()))
        return;
    told = 1;
    cli_progress_end();
    fprintf(stderr, "latentdb: note: OPENBLAS_CORETYPE=%s holds OpenBLAS to its %s kernels; this "
            "CPU can run %s's (AVX-512), which latentdb picks when OPENBLAS_CORETYPE is unset\n",
            getenv("OPENBLAS_CORETYPE"), ldb_blas_corename(), better);
}

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static double progress_last = -1, progress_t0, progress_d0; /* d0: done at t0 (a resume's) */
static int progress_shown;

void cli_progress(const char *label, const char *unit, unsigned long long done,
                  unsigned long long total)
{
    if (!isatty(2))
        return;
    double now = cli_now();
    if (progress_last < 0) {
        progress_t0 = now;
        progress_d0 = (double)done;
    }
    if (progress_last >= 0 && now - progress_last < 0.25 && done < total)
        return;
    progress_last = now;
    double el = now - progress_t0, rate = el > 0 ? (done - progress_d0) / el : 0;
    double pct = total ? 100.0 * done / total : 100.0;
    int w = 30, fill = (int)(pct / 100 * w);
    fprintf(stderr, "\r%s [%.*s%*s] %5.1f%% %llu/%llu %s  %.0f %s/s  ", label, fill,
            "##############################", w - fill, "", pct, done, total, unit, rate, unit);
    progress_shown = 1;
}

void cli_progress_end(void)
{
    if (progress_shown)
        fputs("\r\033[K", stderr);
    progress_shown = 0;
    progress_last = -1;
}

int main(int argc, char **argv)
{
    /* Large buffers (batches, tiles) come from mmap and go back to the OS when freed.
     * glibc would otherwise raise its mmap threshold after the first such free and
     * keep later batches in per-thread arenas (a writer thread per batch): measured
     * RssAnon peak 449 -> 374 MiB on a 409,600-token ingest. */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    if (argc < 2)
        return cli_usage(USAGE, "a command is needed");
    const char *cmd = argv[1];
    /* `latentdb help CMD [SUB]` is `latentdb CMD [SUB] --help` */
    static char help_flag[] = "--help";
    char *help_argv[5] = {argv[0], NULL, NULL, NULL, NULL};
    if (!strcmp(cmd, "help") && argc > 4)
        return cli_usage(USAGE, "help takes a command (and a dict subcommand): latentdb help CMD");
    if (!strcmp(cmd, "help") && argc > 2) {
        for (int a = 2; a < argc; a++)
            help_argv[a - 1] = argv[a];
        help_argv[argc - 1] = help_flag;
        argv = help_argv;
        cmd = argv[1];
    } else if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        fputs(USAGE, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("latentdb %s\n", LDB_VERSION);
        return 0;
    }
    static const struct { const char *name; int (*fn)(int, char **); } cmds[] = {
        {"dict", cmd_dict}, {"init", cmd_init}, {"ingest", cmd_ingest}, {"info", cmd_info},
        {"check", cmd_check}, {"compact", cmd_compact}, {"top", cmd_top}, {"cooc", cmd_cooc},
        {"samples", cmd_samples}, {"seq", cmd_seq}, {"label", cmd_label}, {"export", cmd_export},
        {"import", cmd_import}, {"latent", cmd_latent}, {"density", cmd_density},
        {"tokenize", cmd_tokenize}, {"search", cmd_search}, {"serve", cmd_serve},
        {"page", cmd_page}, {"set-skip", cmd_set_skip}, {"set-tokenizer", cmd_set_tokenizer},
        {"runs", cmd_runs},
    };
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        if (strcmp(cmd, cmds[i].name))
            continue;
        /* dict's own word comes first: `dict add ... --help` runs `dict add --help` */
        int dict = !strcmp(cmd, "dict"), first = dict ? 3 : 2;
        for (int a = first; a < argc; a++)
            if (!strcmp(argv[a], "--help") || (argc == first + 1 && !strcmp(argv[a], "-h"))) {
                char *one[] = {dict ? argv[2] : help_flag, help_flag, NULL};
                help_asked = 1;
                return cmds[i].fn(dict ? 2 : 1, one);
            }
        return cmds[i].fn(argc - 2, argv + 2);
    }
    /* one line and the names, not the whole usage: the mistake stays on screen */
    char *m = NULL;
    fputs("latentdb: ", stderr);
    if (asprintf(&m, "unknown command '%s'", cmd) >= 0)
        cli_put_text(stderr, m, strlen(m));
    free(m);
    fputs("\ncommands:", stderr);
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
        fprintf(stderr, " %s", cmds[i].name);
    fputs("\n`latentdb help CMD` prints a command's usage; `latentdb help`, all of them\n", stderr);
    return EXIT_USAGE;
}
