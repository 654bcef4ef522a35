/* colorize: learns to colour grayscale CIFAR-10 photographs.
 *
 *   colorize [options] DATA_DIR          the whole task (see --help)
 *   colorize info DATA_DIR               what the dataset folder holds
 *   colorize palette DATA_DIR            the k main colours only
 *   colorize predict [MODEL] IN OUT      colour a photograph (PNG, JPEG, PGM/PPM), with the
 *                                        built-in model when none is named
 *   colorize predict [MODEL] IN... -o DIR  colour many, each into DIR/NAME.png
 *
 * This file chooses the command; each is a file of its own (cmd_*.c) over
 * the command line's services (cli.c). The front end alone decides what the
 * user sees; the library files return errors and never print. Exit status:
 * 0 done, 1 failure while running, 2 bad command line or bad input, 128 + N
 * stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "commands.h"

/* What was printed must have arrived: standard output on a full disk is a
 * failed write like any other. */
static int check_stdout(int status) {
    errno = 0;
    int flushed = fflush(stdout) == 0;
    if (flushed && !ferror(stdout)) return status;
    /* an earlier write's reason is gone; the flush's is the same one */
    say_error("standard output: %s", !flushed && errno ? strerror(errno) : "a write failed");
    return status ? status : EXIT_RUN_FAILED;
}

int main(int argc, char **argv) {
    record_command_line(argc, argv);
    if (argc >= 2 && strcmp(argv[1], "info") == 0)
        return check_stdout(cmd_info(argc - 1, argv + 1));
    if (argc >= 2 && strcmp(argv[1], "palette") == 0)
        return check_stdout(cmd_palette(argc - 1, argv + 1));
    if (argc >= 2 && strcmp(argv[1], "predict") == 0)
        return check_stdout(cmd_predict(argc - 1, argv + 1));
    return check_stdout(cmd_run(argc, argv));
}
