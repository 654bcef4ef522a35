/* colorize info DATA_DIR: what the dataset folder holds. */
#include <stdio.h>

#include "cifar.h"
#include "cli.h"
#include "commands.h"

int cmd_info(int argc, char **argv) {
    options o;
    int r = parse_data_command(argc, argv, &o);
    if (r) return r < 0 ? 0 : r;
    const char *dir = o.data_dir;
    cifar_dataset ds;
    if ((r = load_dataset(&o, &ds)) != 0) return r;
    printf("layout  %s (%s)\n", cifar_layout_name(ds.layout), dir);
    for (int f = 0; f < CIFAR_NUM_FILES; f++)
        printf("file    %-18s %6d records\n", ds.file_names[f], ds.file_records[f]);
    printf("class   %-2s %-12s %7s %7s\n", "#", "name", "train", "test");
    for (int c = 0; c < CIFAR_NUM_CLASSES; c++)
        printf("class   %-2d %-12s %7d %7d%s\n", c, ds.class_names[c], ds.train_class_counts[c],
               ds.test_class_counts[c], cifar_class_chosen(&ds, c) ? "  <- chosen" : "");
    char chosen[CIFAR_CHOICE_MAX];
    printf("chosen  %s: %d training, %d validation, %d test images\n",
           cifar_choice_label(&ds, chosen, sizeof chosen), ds.n_train, ds.n_val, ds.n_test);
    cifar_free(&ds);
    return 0;
}
