#include <linux/module.h>
#include <linux/init.h>
#include <linux/version.h>

/*
 * A stand-in for a boot-critical module such as zfs: the initramfs loads
 * it and an init-premount script refuses to boot without it. Version 2.0
 * builds on every kernel.
 */

static int __init critmod_init(void) { pr_info("critmod: loaded\n"); return 0; }
static void __exit critmod_exit(void) { }
module_init(critmod_init);
module_exit(critmod_exit);
MODULE_LICENSE("GPL");
MODULE_VERSION("@VERSION@");
MODULE_DESCRIPTION("dkms-guard end-to-end boot-critical stand-in");
